"""Ratings from pairwise battles: online Elo, Bradley-Terry MLE, bootstrap intervals, ranks.

Pure numpy. Battles are encoded as integer model indices `a`, `b` and `score` = A's points:
1 (A won), 0 (B won) or 0.5 (a tie: "tie" and "tie (bothbad)" alike, half a win each, as
in LMSYS's Elo and BT code).

Ratings are on the Elo scale: P(i beats j) = 1 / (1 + 10 ** ((r_j - r_i) / 400)). Bradley-Terry
ratings are centred so that their mean is 1000 (only differences are identified).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

SCALE = 400.0
BASE = 10.0
INIT = 1000.0
# natural-log strength -> Elo points
_TO_ELO = SCALE / math.log(BASE)
# A whisper of L2 on the strengths keeps a model that won (or lost) every battle finite;
# it is the same order as LMSYS's LogisticRegression(C=1e6).
_RIDGE = 1e-6

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def online_elo(
    a: IntArray, b: IntArray, score: FloatArray, n: int, k: float = 4.0, init: float = INIT
) -> FloatArray:
    """Elo updated battle by battle, in the order given (the order the votes were stored)."""
    r = np.full(n, init, dtype=np.float64)
    for i, j, s in zip(a.tolist(), b.tolist(), score.tolist(), strict=True):
        expected = 1.0 / (1.0 + BASE ** ((r[j] - r[i]) / SCALE))
        r[i] += k * (s - expected)
        r[j] -= k * (s - expected)
    return r


def win_matrices(
    a: IntArray, b: IntArray, score: FloatArray, n: int, counts: NDArray[np.int64] | None = None
) -> FloatArray:
    """W[..., i, j] = points i took from j. `counts` (rounds x battles) weights each battle."""
    contrib = np.zeros((len(a), n * n))
    rows = np.arange(len(a))
    np.add.at(contrib, (rows, a * n + b), score)
    np.add.at(contrib, (rows, b * n + a), 1.0 - score)
    weights = np.ones((1, len(a))) if counts is None else counts.astype(np.float64)
    return (weights @ contrib).reshape(-1, n, n)


def fit_bt(wins: FloatArray, tol: float = 1e-9, max_iter: int = 200) -> FloatArray:
    """Bradley-Terry maximum likelihood for a stack of win matrices (..., n, n), by Newton.

    Returns Elo-scale ratings with mean INIT. The log-likelihood is concave; Newton steps are
    capped so that a model with only wins walks out steadily instead of jumping.
    """
    w = np.asarray(wins, dtype=np.float64)
    stack = w.reshape(-1, *w.shape[-2:])
    m, n, _ = stack.shape
    games = stack + stack.transpose(0, 2, 1)
    theta = np.zeros((m, n))
    gauge = np.full((n, n), 1.0 / n)  # fixes the free shift: steps keep sum(theta) = 0
    eye = np.eye(n)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(theta[:, None, :] - theta[:, :, None]))  # P(i beats j)
        grad = (stack - games * p).sum(axis=2) - _RIDGE * theta
        v = games * p * (1.0 - p)
        info = v.sum(axis=2)[:, :, None] * eye - v  # minus the Hessian
        step = np.linalg.solve(info + _RIDGE * eye + gauge, grad[..., None])[..., 0]
        biggest = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, 2.0 / np.maximum(biggest, 1e-300))
        theta += step
        if biggest.max() < tol:
            break
    theta -= theta.mean(axis=1, keepdims=True)
    return (INIT + _TO_ELO * theta).reshape(*w.shape[:-2], n)


def bootstrap_bt(
    a: IntArray, b: IntArray, score: FloatArray, n: int, rounds: int, rng: np.random.Generator
) -> FloatArray:
    """BT ratings refitted on `rounds` resamples of the battles (with replacement): (rounds, n).

    Resampling battles one by one is the same as drawing how many of each distinct
    (a, b, score) battle a resample holds from a multinomial, which is what this does.
    """
    cells, count = np.unique(np.stack([a, b, score * 2]), axis=1, return_counts=True)
    draws = rng.multinomial(len(a), count / len(a), size=rounds)
    ca, cb = cells[0].astype(np.int64), cells[1].astype(np.int64)
    return fit_bt(win_matrices(ca, cb, cells[2] / 2, n, draws))


def intervals(samples: FloatArray, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Percentile interval of each column."""
    tail = (1.0 - level) / 2 * 100
    lower, upper = np.percentile(samples, [tail, 100 - tail], axis=0)
    return lower, upper


def ranks(lower: Sequence[float] | FloatArray, upper: Sequence[float] | FloatArray) -> list[int]:
    """1 + the number of models whose lower bound is above this model's upper bound."""
    lo, hi = np.asarray(lower), np.asarray(upper)
    return [1 + int((lo > hi[i]).sum()) for i in range(len(hi))]
