"""Which two models meet in a battle: weighted draws without replacement, sides shuffled.

A weight of 0 is never drawn, nor is a retired model. Models short of the leaderboard's vote
threshold are drawn more often, in proportion to how far short they are (`balanced`), so
a newcomer gets its votes without a hand-kept boost list. Weights are checked against the
models the gateway lists once, at start-up, so a typo or an all-zero table stops the UI
instead of failing every battle.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping


class ArenaConfigError(ValueError):
    """The arena weights cannot work with the models served; raised at start-up."""


def check_weights(weights: Mapping[str, float], served: Collection[str]) -> None:
    """Raise ArenaConfigError unless explicit weights name served models, two of them > 0."""
    if not weights:
        return  # the default: every served model weighs 1
    unknown = sorted(set(weights) - set(served))
    if unknown:
        raise ArenaConfigError(
            f"arena weights name models the gateway does not serve: {', '.join(unknown)} "
            f"(it serves: {', '.join(sorted(served)) or 'nothing'})"
        )
    positive = sorted(m for m, w in weights.items() if w > 0)
    if not positive:
        raise ArenaConfigError("every arena weight is 0: no battle could ever be drawn")
    if len(positive) < 2:
        raise ArenaConfigError(
            f"only {positive[0]} has an arena weight above 0: a battle needs two models"
        )


def effective_weights(
    weights: Mapping[str, float], served: Collection[str], retired: Collection[str] = ()
) -> dict[str, float]:
    """The models a battle may draw now and their weights (served, not retired, weight > 0)."""
    if not weights:
        return {m: 1.0 for m in sorted(served) if m not in retired}
    return {
        m: float(w)
        for m, w in sorted(weights.items())
        if m in served and w > 0 and m not in retired
    }


def balanced(
    weights: Mapping[str, float], votes: Mapping[str, int], min_votes: int, boost: float
) -> dict[str, float]:
    """Weights scaled by 1 + boost * (share of `min_votes` still missing): a model with no
    votes weighs 1 + boost times its weight, one past the threshold its weight alone."""
    return {
        m: w * (1.0 + boost * max(0.0, 1.0 - votes.get(m, 0) / min_votes))
        for m, w in weights.items()
    }


def draw_pair(weights: Mapping[str, float], rng: random.Random) -> tuple[str, str]:
    """Two distinct models, each drawn in proportion to its weight; (side A, side B).

    The first is drawn from all, the second from the rest, then the sides are shuffled, so
    which model sits on the left says nothing about the draw order.
    """
    pool = {m: w for m, w in sorted(weights.items()) if w > 0}
    if len(pool) < 2:
        raise ArenaConfigError(
            f"the arena needs two models with a weight above 0; available: {sorted(pool) or []}"
        )
    first = rng.choices(list(pool), weights=list(pool.values()))[0]
    del pool[first]
    second = rng.choices(list(pool), weights=list(pool.values()))[0]
    pair = [first, second]
    rng.shuffle(pair)
    return pair[0], pair[1]
