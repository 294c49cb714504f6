"""Token ids -> text deltas, and stop strings that are held back and never emitted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Tokens of context kept before the unread ids so that decoding a suffix keeps its leading
# spaces right (SentencePiece merges them into the next piece).
_CONTEXT_TOKENS = 5


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas without re-decoding everything.

    A delta is only released once it does not end in a partial UTF-8 character, so multi-token
    characters (CJK, emoji) never come out as U+FFFD.
    """

    def __init__(self, tokenizer: Any, prompt_ids: Sequence[int], *, skip_special: bool = True):
        self._tok = tokenizer
        self._skip = skip_special
        self._ids: list[int] = list(prompt_ids[-_CONTEXT_TOKENS:])
        self._prefix = 0
        self._read = len(self._ids)

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return new_text[len(prefix_text) :]
        return ""

    def _decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=self._skip)


class StopMatcher:
    """Finds stop strings in streamed text.

    `feed` returns the text that is safe to emit: anything that could still be the start of a
    stop string is held back until the next piece decides it. On a match the stop string and
    everything after it are dropped and `stopped` becomes true.
    """

    def __init__(self, stops: Sequence[str]):
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self._stops:
            return text
        buf = self._pending + text
        hits = [i for i in (buf.find(s) for s in self._stops) if i >= 0]
        if hits:
            self.stopped = True
            self._pending = ""
            return buf[: min(hits)]
        keep = self._partial_suffix(buf)
        self._pending = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """At the end of generation, the held-back text was not a stop after all."""
        out, self._pending = self._pending, ""
        return "" if self.stopped else out

    def _partial_suffix(self, buf: str) -> int:
        """Length of the longest suffix of buf that is a proper prefix of some stop string."""
        longest = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(buf)), longest, -1):
                if buf.endswith(stop[:n]):
                    longest = n
                    break
        return longest
