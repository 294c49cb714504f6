"""Model name -> template rules: the most specific matching rule wins, never the first one.

A rule's pattern is read as a sequence of name tokens: lower-cased, split on every character
that is not a letter or a digit. It matches a model name when its tokens occur in the name's
tokens in that order (other tokens may sit between them), so "llama-2-chat" matches
"meta-llama/Llama-2-7b-chat-hf" but not "meta-llama/Llama-2-7b-hf", and "alpaca" does not match
"alpaca2" or "openalpaca" (whole tokens only).

The name is tried in two steps: its last path component first ("Llama-2-7b-chat-hf",
"llama-2-7b-chat.Q4_K_M.gguf"), then the whole string (for paths such as a Hugging Face cache
snapshot, whose last component is a commit hash). Among the rules matching one step, the winner
has the highest (priority, number of tokens, number of characters); an exact tie falls to the
alphabetically first pattern. The result never depends on the order rules are listed in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_PATH_SEP = re.compile(r"[/\\]")


def name_tokens(text: str) -> tuple[str, ...]:
    """ "Baichuan-inc/Baichuan2-13B-Chat" -> ("baichuan", "inc", "baichuan2", "13b", "chat")."""
    return tuple(token for token in _NOT_ALNUM.split(text.lower()) if token)


@dataclasses.dataclass(frozen=True, slots=True)
class NameRule:
    """Model names whose tokens contain `pattern`'s tokens, in order, use `template`."""

    pattern: str
    template: str
    priority: int = 0
    tokens: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tokens = name_tokens(self.pattern)
        if not tokens:
            raise ValueError(f"rule pattern {self.pattern!r} has no letters or digits")
        object.__setattr__(self, "tokens", tokens)

    @property
    def specificity(self) -> tuple[int, int, int]:
        return (self.priority, len(self.tokens), sum(len(token) for token in self.tokens))

    def matches(self, tokens: tuple[str, ...]) -> bool:
        remaining = iter(tokens)
        return all(token in remaining for token in self.tokens)


def _steps(model_name: str) -> tuple[str, ...]:
    whole = model_name.strip().rstrip("/\\")
    last = _PATH_SEP.split(whole)[-1]
    return (last, whole) if last != whole else (whole,)


def _order(rule: NameRule) -> tuple[int, int, int, str]:
    """Sort key: most specific first; on a tie, the alphabetically first pattern."""
    priority, n_tokens, n_chars = rule.specificity
    return (-priority, -n_tokens, -n_chars, rule.pattern)


def matching_rules(rules: Iterable[NameRule], model_name: str) -> list[NameRule]:
    """Every rule that matches at the first step that has any, most specific first."""
    rules = tuple(rules)
    for step in _steps(model_name):
        tokens = name_tokens(step)
        hits = [rule for rule in rules if rule.matches(tokens)]
        if hits:
            return sorted(hits, key=_order)
    return []


def best_rule(rules: Iterable[NameRule], model_name: str) -> NameRule | None:
    """The most specific rule for `model_name`, or None when no rule matches."""
    hits = matching_rules(rules, model_name)
    return hits[0] if hits else None
