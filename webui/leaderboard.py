"""The leaderboard from stored vote records: which votes count, then the ratings table.

Only anonymous battles count: in a side-by-side round the user knew the names. A battle is
also dropped when its text (prompts or answers, either side) names a model or one of the
identity words (vendor names): a model that said who it is was not judged blind. Words match
whole words, case-insensitively ("meta" does not match "metadata").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from webui import ratings

WINNER_SCORE = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


@dataclass(frozen=True)
class Battle:
    model_a: str
    model_b: str
    winner: str


@dataclass
class VoteCounts:
    stored: int = 0  # every vote record read
    named: int = 0  # side-by-side votes (names known): never counted
    identity: int = 0  # anonymous battles whose text revealed a model
    invalid: int = 0  # malformed records
    counted: int = 0


@dataclass(frozen=True)
class Row:
    rank: int
    model: str
    rating: float  # Bradley-Terry MLE, Elo scale
    lower: float  # bootstrap 95 % interval
    upper: float
    elo: float  # online Elo, K=4
    votes: int
    wins: int
    ties: int
    losses: int


@dataclass
class Leaderboard:
    rows: list[Row] = field(default_factory=list)
    counts: VoteCounts = field(default_factory=VoteCounts)
    bootstrap_rounds: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "votes": asdict(self.counts),
            "bootstrap_rounds": self.bootstrap_rounds,
            "tie_handling": "tie and tie (bothbad) count as half a win for each model",
            "models": [asdict(r) for r in self.rows],
        }


def identity_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of `words` as a whole word, case-insensitively."""
    cleaned = sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    alternatives = "|".join(re.escape(w) for w in cleaned)
    return re.compile(rf"(?<![\w])(?:{alternatives})(?![\w])", re.IGNORECASE)


def battle_text(record: Mapping[str, Any]) -> str:
    parts = []
    for key in ("conversation_a", "conversation_b"):
        for message in record.get(key) or []:
            parts.append(str(message.get("content", "")))
    return "\n".join(parts)


def battles_from_votes(
    records: Iterable[Mapping[str, Any]], identity_words: Sequence[str]
) -> tuple[list[Battle], VoteCounts]:
    """The battles that count, in stored order, and how many votes were left out and why."""
    records = list(records)
    counts = VoteCounts(stored=len(records))
    anonymous: list[tuple[Battle, Mapping[str, Any]]] = []
    for r in records:
        a, b, winner = r.get("model_a"), r.get("model_b"), r.get("winner")
        if not (isinstance(a, str) and isinstance(b, str) and a != b and winner in WINNER_SCORE):
            counts.invalid += 1
        elif r.get("anonymous") is not True:
            counts.named += 1
        else:
            anonymous.append((Battle(a, b, str(winner)), r))
    models = {name for battle, _ in anonymous for name in (battle.model_a, battle.model_b)}
    pattern = identity_pattern([*identity_words, *models])
    battles = []
    for battle, r in anonymous:
        if pattern is not None and pattern.search(battle_text(r)):
            counts.identity += 1
        else:
            battles.append(battle)
    counts.counted = len(battles)
    return battles, counts


def compute(
    battles: Sequence[Battle], rounds: int, seed: int = 0, k: float = 4.0
) -> tuple[list[Row], int]:
    """Rows best first (by BT rating); the same battles and seed give the same numbers."""
    if not battles:
        return [], 0
    names = sorted({m for bt in battles for m in (bt.model_a, bt.model_b)})
    index = {m: i for i, m in enumerate(names)}
    n = len(names)
    a = np.array([index[bt.model_a] for bt in battles], dtype=np.int64)
    b = np.array([index[bt.model_b] for bt in battles], dtype=np.int64)
    score = np.array([WINNER_SCORE[bt.winner] for bt in battles], dtype=np.float64)

    elo = ratings.online_elo(a, b, score, n, k=k)
    mle = ratings.fit_bt(ratings.win_matrices(a, b, score, n))[0]
    samples = ratings.bootstrap_bt(a, b, score, n, rounds, np.random.default_rng(seed))
    lower, upper = ratings.intervals(samples)
    rank = ratings.ranks(lower, upper)

    wins = np.bincount(a, score == 1.0, n) + np.bincount(b, score == 0.0, n)
    losses = np.bincount(a, score == 0.0, n) + np.bincount(b, score == 1.0, n)
    ties = np.bincount(a, score == 0.5, n) + np.bincount(b, score == 0.5, n)
    rows = [
        Row(
            rank=rank[i],
            model=names[i],
            rating=round(float(mle[i]), 2),
            lower=round(float(lower[i]), 2),
            upper=round(float(upper[i]), 2),
            elo=round(float(elo[i]), 2),
            votes=int(wins[i] + losses[i] + ties[i]),
            wins=int(wins[i]),
            ties=int(ties[i]),
            losses=int(losses[i]),
        )
        for i in range(n)
    ]
    rows.sort(key=lambda r: (r.rank, -r.rating, r.model))
    return rows, rounds


def build(
    records: Iterable[Mapping[str, Any]], identity_words: Sequence[str], rounds: int, seed: int = 0
) -> Leaderboard:
    battles, counts = battles_from_votes(records, identity_words)
    rows, used = compute(battles, rounds, seed)
    return Leaderboard(rows=rows, counts=counts, bootstrap_rounds=used)
