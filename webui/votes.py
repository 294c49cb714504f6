"""The votes as the leaderboard needs them: a compact projection, kept beside the transcripts.

Each vote is stored twice, under the vote's id as idempotency key: the full record (both
conversations) in the "votes" stream, and its projection (models, outcome, identity words
found, style features) in "vote_index". The leaderboard reads only the projection, in pages
and incrementally: a `VoteTable` remembers where it stopped and absorbs only what is new.
Votes stored before the projection existed (schema 1) are projected once, when first read.

A `VoteTable` keeps one row per counted battle in numpy arrays (about 50 bytes a vote) and the
models x models win matrix, both updated vote by vote.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from store import EventLog
from webui.identity import IdentityFilter, split_turns

SCHEMA = 2
VOTES = "votes"
VOTE_INDEX = "vote_index"
PAGE = 5000
LEGACY_PAGE = 500  # full records are large; a store without schema-1 votes reads one page

WINNER_SCORE = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
STYLE_FEATURES = ("length", "headers", "lists", "bold")
_HEADER = re.compile(r"^\s{0,3}#{1,6}\s", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def style_features(messages: Sequence[Mapping[str, Any]]) -> list[float]:
    """One side's answers: characters, markdown headers, list items, bold spans."""
    text = "\n".join(
        str(m.get("content") or "") for m in messages or [] if m.get("role") == "assistant"
    )
    return [
        float(len(text)),
        float(len(_HEADER.findall(text))),
        float(len(_LIST_ITEM.findall(text))),
        float(len(_BOLD.findall(text))),
    ]


def judge(record: Mapping[str, Any], identity: IdentityFilter) -> dict[str, Any]:
    """What is decided once, at vote time: identity words the answers show, and style."""
    sides = [record.get("conversation_a") or [], record.get("conversation_b") or []]
    answers, prompts = split_turns(sides)
    return {
        "identity": identity.revealed(answers, prompts),
        "style": [style_features(side) for side in sides],
    }


def project(record: Mapping[str, Any], identity: IdentityFilter | None = None) -> dict[str, Any]:
    """The compact form of a full vote record. A record from before schema 2 carries no verdict:
    `identity` judges it now (once: the projection is what is kept)."""
    verdict: Mapping[str, Any] = record
    if "identity" not in record and identity is not None:
        verdict = judge(record, identity)
    return {
        "schema": SCHEMA,
        "vote_id": record.get("vote_id"),
        "voted_at": record.get("voted_at"),
        "model_a": record.get("model_a"),
        "model_b": record.get("model_b"),
        "winner": record.get("winner"),
        "anonymous": record.get("anonymous"),
        "identity": list(verdict.get("identity") or []),
        "style": verdict.get("style"),
    }


@dataclass
class VoteCounts:
    stored: int = 0  # every vote record read
    duplicate: int = 0  # the same vote id again (a retried write): counted once
    named: int = 0  # side-by-side votes (names known): never counted
    identity: int = 0  # anonymous battles whose answers revealed a model
    invalid: int = 0  # malformed records
    counted: int = 0


@dataclass(frozen=True)
class Battles:
    """Counted battles as arrays, in stored order; `style` is (battles, 2 sides, features)."""

    names: list[str]
    a: NDArray[np.int64]
    b: NDArray[np.int64]
    score: NDArray[np.float64]
    style: NDArray[np.float64]
    counts: VoteCounts = field(default_factory=VoteCounts)

    @property
    def n(self) -> int:
        return len(self.names)


class VoteTable:
    """The projection in memory, grown vote by vote; not thread-safe (one writer, snapshots)."""

    def __init__(self, identity: IdentityFilter | None = None) -> None:
        self.identity = identity
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.counts = VoteCounts()
        self.cursor: str | None = None  # last vote_index id absorbed
        self.legacy_cursor: str | None = None  # last schema-1 vote absorbed
        self.legacy_done = False
        self._ids: set[str] = set()
        self._size = 0
        self._a = np.zeros(1024, dtype=np.int32)
        self._b = np.zeros(1024, dtype=np.int32)
        self._score = np.zeros(1024, dtype=np.int8)  # 2 = A won, 1 = tie, 0 = B won
        self._style = np.zeros((1024, 2, len(STYLE_FEATURES)), dtype=np.float32)
        self._wins = np.zeros((0, 0))  # points i took from j, half points for ties

    def add(self, record: Mapping[str, Any]) -> None:
        """Absorb one projected (or full) vote record."""
        self.counts.stored += 1
        vote_id = record.get("vote_id")
        if isinstance(vote_id, str):
            if vote_id in self._ids:
                self.counts.duplicate += 1
                return
            self._ids.add(vote_id)
        a, b, winner = record.get("model_a"), record.get("model_b"), record.get("winner")
        if not (isinstance(a, str) and isinstance(b, str) and a != b and winner in WINNER_SCORE):
            self.counts.invalid += 1
            return
        if record.get("anonymous") is not True:
            self.counts.named += 1
            return
        verdict = record if "identity" in record or self.identity is None else None
        if verdict is None:
            verdict = judge(record, self.identity)  # type: ignore[arg-type]
        if verdict.get("identity"):
            self.counts.identity += 1
            return
        self._append(self._model(a), self._model(b), WINNER_SCORE[str(winner)], verdict)

    def add_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        for record in records:
            self.add(record)

    def _model(self, name: str) -> int:
        i = self.index.get(name)
        if i is None:
            i = self.index[name] = len(self.names)
            self.names.append(name)
            grown = np.zeros((i + 1, i + 1))
            grown[:i, :i] = self._wins
            self._wins = grown
        return i

    def _append(self, i: int, j: int, score: float, verdict: Mapping[str, Any]) -> None:
        if self._size == len(self._a):
            cap = 2 * len(self._a)
            self._a = np.resize(self._a, cap)
            self._b = np.resize(self._b, cap)
            self._score = np.resize(self._score, cap)
            self._style = np.resize(self._style, (cap, *self._style.shape[1:]))
        k = self._size
        self._a[k], self._b[k], self._score[k] = i, j, round(score * 2)
        style = verdict.get("style")
        try:
            self._style[k] = np.asarray(style, dtype=np.float32).reshape(2, len(STYLE_FEATURES))
        except (TypeError, ValueError):
            self._style[k] = np.nan  # unknown style: left out of the style-controlled fit
        self._wins[i, j] += score
        self._wins[j, i] += 1.0 - score
        self._size += 1
        self.counts.counted += 1

    def wins(self) -> NDArray[np.float64]:
        """The models x models win matrix, kept up to date vote by vote."""
        return self._wins.copy()

    def votes_by_model(self) -> dict[str, int]:
        games = self._wins + self._wins.T
        return {name: round(float(games[i].sum())) for i, name in enumerate(self.names)}

    def battles(self) -> Battles:
        """A snapshot of the counted battles (copies: later votes do not change it)."""
        k = self._size
        return Battles(
            names=list(self.names),
            a=self._a[:k].astype(np.int64),
            b=self._b[:k].astype(np.int64),
            score=self._score[:k].astype(np.float64) / 2,
            style=self._style[:k].astype(np.float64),
            counts=VoteCounts(**vars(self.counts)),
        )


async def load(events: EventLog, table: VoteTable, page: int = PAGE) -> int:
    """Absorb the votes stored since the table last looked; how many records were read.

    Schema-1 votes (stored before the projection) come first in the "votes" stream; they are
    read until the first schema-2 record, which has its projection in "vote_index". Records
    are absorbed in a worker thread, a page at a time: the caller's event loop stays free.
    The caller makes sure only one `load` runs on a table at a time.
    """
    read = 0
    while not table.legacy_done:
        entries = await events.read(VOTES, after=table.legacy_cursor, limit=LEGACY_PAGE)
        read += await asyncio.to_thread(_absorb_legacy, table, entries)
        if len(entries) < LEGACY_PAGE:
            break
    while True:
        entries = await events.read(VOTE_INDEX, after=table.cursor, limit=page)
        if entries:
            await asyncio.to_thread(table.add_many, [record for _, record in entries])
            table.cursor = entries[-1][0]
        read += len(entries)
        if len(entries) < page:
            return read


def _absorb_legacy(table: VoteTable, entries: list[tuple[str, dict[str, Any]]]) -> int:
    for i, (entry_id, record) in enumerate(entries):
        if int(record.get("schema") or 1) >= SCHEMA:
            table.legacy_done = True
            return i
        table.add(project(record, table.identity))
        table.legacy_cursor = entry_id
    return len(entries)
