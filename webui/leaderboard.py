"""The leaderboard from the counted battles: who is ranked, anchoring, groups, the table.

Which votes count is decided in `webui.votes` (anonymous, valid, once per vote id, answers
that did not reveal a model). From those battles:
- A model is ranked once it has `min_votes` battles. Below that it is listed as provisional
  with its count, and its battles are left out of the fit, so a lucky newcomer moves nobody.
- Ratings are anchored: the anchor model (configured, or the ranked model with the most
  battles) sits at 1000 and the others are relative to it, so a model added later cannot
  shift everyone by its own luck, as centring on the mean would.
- Models that never met, not even through a chain of opponents, cannot be compared: each
  such comparison group is rated, anchored and ranked on its own, and flagged.
- Style control: a second rating from Bradley-Terry with style covariates (answer length,
  headers, lists, bold), so that a model cannot climb by writing longer.
- Retired models are left off the board and out of the draw; their votes stay in the fit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from webui import ratings
from webui.identity import IdentityFilter
from webui.votes import STYLE_FEATURES, Battles, VoteCounts, VoteTable

if TYPE_CHECKING:
    from webui.settings import WebUISettings

DEFAULT_MIN_VOTES = 20


@dataclass(frozen=True)
class Options:
    rounds: int = 1000  # bootstrap resamples for the intervals
    seed: int = 0  # same battles and seed, same numbers
    min_votes: int = DEFAULT_MIN_VOTES
    anchor: str | None = None  # None: per group, the ranked model with the most fitted battles
    retired: Collection[str] = ()
    style: bool = True
    k: float = 4.0  # online Elo

    @classmethod
    def from_settings(cls, settings: WebUISettings) -> Options:
        return cls(
            rounds=settings.bootstrap_rounds,
            seed=settings.leaderboard_seed,
            min_votes=settings.min_votes,
            anchor=settings.leaderboard_anchor,
            retired=tuple(settings.retired_models),
        )


@dataclass(frozen=True)
class Row:
    rank: int  # 1 + models of its group whose interval lies entirely above
    model: str
    rating: float  # Bradley-Terry MLE, Elo scale, anchored
    lower: float  # bootstrap 95 % interval
    upper: float
    style: float | None  # style-controlled BT rating, anchored alike
    elo: float  # online Elo, K=4, over the ranked models' battles
    votes: int
    wins: int
    ties: int
    losses: int
    group: int  # comparison group: ratings compare only within one


@dataclass(frozen=True)
class Provisional:
    model: str
    votes: int
    wins: int
    ties: int
    losses: int


@dataclass(frozen=True)
class Group:
    number: int
    anchor: str
    models: int


@dataclass
class Leaderboard:
    rows: list[Row] = field(default_factory=list)
    provisional: list[Provisional] = field(default_factory=list)
    counts: VoteCounts = field(default_factory=VoteCounts)
    bootstrap_rounds: int = 0
    min_votes: int = DEFAULT_MIN_VOTES
    groups: list[Group] = field(default_factory=list)
    style_coefficients: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "votes": asdict(self.counts),
            "bootstrap_rounds": self.bootstrap_rounds,
            "min_votes": self.min_votes,
            "tie_handling": "tie and tie (bothbad) count as half a win for each model",
            "anchoring": "each comparison group's anchor model is fixed at 1000",
            "groups": [asdict(g) for g in self.groups],
            "style_coefficients": self.style_coefficients,
            "models": [asdict(r) for r in self.rows],
            "provisional": [asdict(p) for p in self.provisional],
        }


def build(
    records: Iterable[Mapping[str, Any]], identity: IdentityFilter | None, options: Options
) -> Leaderboard:
    """The leaderboard of stored vote records (full or projected), in stored order."""
    table = VoteTable(identity)
    for record in records:
        table.add(record)
    return compute(table.battles(), options)


def compute(battles: Battles, options: Options) -> Leaderboard:
    board = Leaderboard(counts=battles.counts, min_votes=options.min_votes)
    n = battles.n
    if n == 0:
        return board
    a, b, score = battles.a, battles.b, battles.score
    wins = np.bincount(a, score == 1.0, n) + np.bincount(b, score == 0.0, n)
    losses = np.bincount(a, score == 0.0, n) + np.bincount(b, score == 1.0, n)
    ties = np.bincount(a, score == 0.5, n) + np.bincount(b, score == 0.5, n)
    votes = (wins + losses + ties).astype(np.int64)
    retired = set(options.retired)
    ranked = votes >= options.min_votes
    board.provisional = sorted(
        (
            Provisional(name, int(votes[i]), int(wins[i]), int(ties[i]), int(losses[i]))
            for i, name in enumerate(battles.names)
            if not ranked[i] and name not in retired
        ),
        key=lambda p: (-p.votes, p.model),
    )
    fitted = np.flatnonzero(ranked)
    if len(fitted) == 0:
        return board
    # Only battles between ranked models are fitted: provisional ones move nobody.
    local = np.full(n, -1, dtype=np.int64)
    local[fitted] = np.arange(len(fitted))
    keep = ranked[a] & ranked[b]
    ka, kb, ks = local[a[keep]], local[b[keep]], score[keep]
    m = len(fitted)
    names = [battles.names[i] for i in fitted]
    mvotes = np.bincount(ka, minlength=m) + np.bincount(kb, minlength=m)  # fitted battles

    wins_matrix = ratings.win_matrices(ka, kb, ks, m)[0]
    rng = np.random.default_rng(options.seed)
    boot = ratings.bootstrap_wins(ka, kb, ks, m, options.rounds, rng) if len(ka) else None
    mle = np.full(m, ratings.INIT)
    lower, upper = mle.copy(), mle.copy()
    labels = ratings.components(ka, kb, m)
    groups = sorted(
        (np.flatnonzero(labels == g) for g in range(int(labels.max()) + 1)),
        key=lambda members: (-int(mvotes[members].sum()), names[members[0]]),
    )
    anchors = []
    for members in groups:
        anchor = _anchor(members, names, mvotes, options.anchor, retired)
        anchors.append(anchor)
        if len(members) < 2:
            continue
        pos = int(np.flatnonzero(members == anchor)[0])
        sub = np.ix_(members, members)
        mle[members] = ratings.anchored(ratings.fit_bt(wins_matrix[sub]), pos)
        assert boot is not None
        samples = ratings.anchored(ratings.fit_bt(boot[:, members][:, :, members]), pos)
        lower[members], upper[members] = ratings.intervals(samples)

    style = _style_ratings(battles, keep, ka, kb, ks, m, groups, anchors, options, board)
    elo = ratings.online_elo(ka, kb, ks, m, k=options.k)
    rows = []
    for number, (members, anchor) in enumerate(zip(groups, anchors, strict=True), start=1):
        shown = [int(i) for i in members if names[i] not in retired]
        board.groups.append(Group(number, names[anchor], len(shown)))
        rank = ratings.ranks(lower[shown], upper[shown])
        for r, i in zip(rank, shown, strict=True):
            g = fitted[i]
            rows.append(
                Row(
                    rank=r,
                    model=names[i],
                    rating=round(float(mle[i]), 2),
                    lower=round(float(lower[i]), 2),
                    upper=round(float(upper[i]), 2),
                    style=None if style is None else round(float(style[i]), 2),
                    elo=round(float(elo[i]), 2),
                    votes=int(votes[g]),
                    wins=int(wins[g]),
                    ties=int(ties[g]),
                    losses=int(losses[g]),
                    group=number,
                )
            )
    board.groups = [g for g in board.groups if g.models]
    rows.sort(key=lambda r: (r.group, r.rank, -r.rating, r.model))
    board.rows = rows
    board.bootstrap_rounds = options.rounds if boot is not None else 0
    return board


def _anchor(
    members: np.ndarray,
    names: list[str],
    votes: np.ndarray,
    wanted: str | None,
    retired: set[str],
) -> int:
    """The configured anchor if it is in this group; else its most-voted shown model."""
    for i in members:
        if names[i] == wanted:
            return int(i)
    return int(min(members, key=lambda i: (names[i] in retired, -votes[i], names[i])))


def _style_ratings(
    battles: Battles,
    keep: np.ndarray,
    ka: np.ndarray,
    kb: np.ndarray,
    ks: np.ndarray,
    m: int,
    groups: list[np.ndarray],
    anchors: list[int],
    options: Options,
    board: Leaderboard,
) -> np.ndarray | None:
    """Style-controlled ratings of the ranked models, anchored per group (None: not fitted)."""
    if not options.style or not len(ka):
        return None
    style = battles.style[keep]
    known = np.isfinite(style).all(axis=(1, 2))
    if not known.any():
        return None
    x = ratings.style_diffs(style[known])
    fitted, beta = ratings.fit_bt_style(ka[known], kb[known], ks[known], x, m)
    board.style_coefficients = {
        f: round(float(c), 2) for f, c in zip(STYLE_FEATURES, beta, strict=True)
    }
    for members, anchor in zip(groups, anchors, strict=True):
        fitted[members] = fitted[members] - fitted[anchor] + ratings.INIT
    return fitted
