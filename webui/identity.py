"""Did a battle's answers give away who wrote them? Decided once, when the vote is cast.

A battle whose answers name a model family ("Llama3", "Qwen2.5-7B", "TinyLlama", "GPT-4o") or a
maker ("Made by Meta") was not judged blind, so it does not count. The text is NFKC-normalised
and stripped of zero-width characters first ("Ｌｌａｍａ", "Lla\\u200bma"). A word matches:
- at the start of a word, or glued after a lower-case letter when it starts upper-case
  ("TinyLlama", but not "Delphi" for "phi");
- followed by anything but a letter: digits, punctuation, spaces or the end ("Llama3",
  "Mistral7B", "GPT-4o"), so "metadata" and "philosophy" do not match "meta" and "phi";
- with spaces, hyphens, dots or underscores between its parts, or none ("Hugging-Face");
- for a maker, not followed by a hyphen and a letter ("meta-analysis" is not Meta; a family
  is: "Mistral-Instruct").

Only the answers are judged, never the user's prompts. A maker that the user's own prompt
names ("what does Microsoft sell?") is not held against an answer that repeats it; a model
family always is ("are you Llama?" "Yes, I am Llama").
Served model names are not identity words unless configured as such.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Characters that render as nothing and can split a word unseen.
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u00ad\u034f\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063"
        "\u2064\ufeff",
    ),
    None,
)
_SEPARATORS = r"[\s\-_.]*"
_LETTER = r"[^\W\d_]"


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


def _key(word: str) -> str:
    """A word with case and separators removed: how matched text is traced to its word."""
    return re.sub(r"[\s\-_.]+", "", normalize(word).casefold())


def _word_pattern(word: str) -> str:
    parts = [p for p in re.split(r"[\s\-_.]+", normalize(word).casefold()) if p]
    return _SEPARATORS.join(re.escape(p) for p in parts)


def _alternatives(words: dict[str, str]) -> str:
    return "|".join(_word_pattern(words[k]) for k in sorted(words, key=len, reverse=True))


class IdentityFilter:
    """Finds identity words in answers; `families` always count, `makers` unless prompted."""

    def __init__(self, families: Iterable[str], makers: Iterable[str] = ()) -> None:
        family = {_key(w): w.strip() for w in families if _key(w)}
        maker = {_key(w): w.strip() for w in makers if _key(w) and _key(w) not in family}
        self.makers = set(maker)
        self._words = {**family, **maker}
        self._pattern: re.Pattern[str] | None = None
        branches = []
        if family:
            branches.append(rf"(?i:{_alternatives(family)})(?!{_LETTER})")
        if maker:
            branches.append(rf"(?i:{_alternatives(maker)})(?!{_LETTER})(?![\-_]{_LETTER})")
        if branches:
            start = rf"(?:(?<!{_LETTER})|(?<=[a-z])(?=[A-Z]))"
            self._pattern = re.compile(start + "(?:" + "|".join(branches) + ")")

    def words_in(self, text: str) -> set[str]:
        """The keys of the identity words found in `text`."""
        if self._pattern is None:
            return set()
        return {_key(m.group(0)) for m in self._pattern.finditer(normalize(text))} & set(
            self._words
        )

    def revealed(self, answers: Iterable[str], prompts: Iterable[str] = ()) -> list[str]:
        """The identity words the answers show, sorted; [] means the battle was blind."""
        found: set[str] = set()
        for answer in answers:
            found |= self.words_in(answer)
        if found & self.makers:
            prompted = set().union(*(self.words_in(p) for p in prompts))
            found -= prompted & self.makers
        return sorted(self._words[k].lower() for k in found)


def split_turns(
    conversations: Sequence[Sequence[Mapping[str, Any]]],
) -> tuple[list[str], list[str]]:
    """(answers, prompts) of a battle's conversations: assistant and user messages."""
    answers: list[str] = []
    prompts: list[str] = []
    for conversation in conversations:
        for message in conversation or []:
            content = str(message.get("content") or "")
            (answers if message.get("role") == "assistant" else prompts).append(content)
    return answers, prompts
