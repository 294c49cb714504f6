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
    r = [init] * n  # plain floats: a Python loop over lists is several times faster than numpy
    for i, j, s in zip(a.tolist(), b.tolist(), score.tolist(), strict=True):
        delta = k * (s - 1.0 / (1.0 + BASE ** ((r[j] - r[i]) / SCALE)))
        r[i] += delta
        r[j] -= delta
    return np.array(r, dtype=np.float64)


def win_matrices(
    a: IntArray, b: IntArray, score: FloatArray, n: int, counts: NDArray[np.int64] | None = None
) -> FloatArray:
    """W[..., i, j] = points i took from j. `counts` (rounds x battles) weights each battle.

    Built as models x models directly (never battles x models^2): each battle adds its points
    into one cell for A and one for B.
    """
    cells = np.concatenate([a * n + b, b * n + a])
    points = np.concatenate([score, 1.0 - score])
    if counts is None:
        flat: FloatArray = np.bincount(cells, points, n * n).astype(np.float64)[None, :]
    else:
        weights: FloatArray = np.asarray(counts, dtype=np.float64)
        flat = np.zeros((len(weights), n * n))
        for r in range(len(weights)):  # one bincount per round: memory stays rounds x n^2
            w = np.concatenate([weights[r], weights[r]])
            flat[r] = np.bincount(cells, points * w, minlength=n * n)
    return flat.reshape(-1, n, n)


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
    return fit_bt(bootstrap_wins(a, b, score, n, rounds, rng))


def bootstrap_wins(
    a: IntArray, b: IntArray, score: FloatArray, n: int, rounds: int, rng: np.random.Generator
) -> FloatArray:
    """The win matrices of `rounds` resamples of the battles (with replacement): (rounds, n, n)."""
    cells, count = np.unique(np.stack([a, b, score * 2]), axis=1, return_counts=True)
    draws = rng.multinomial(len(a), count / len(a), size=rounds)
    ca, cb = cells[0].astype(np.int64), cells[1].astype(np.int64)
    return win_matrices(ca, cb, cells[2] / 2, n, draws)


def components(a: IntArray, b: IntArray, n: int) -> IntArray:
    """Label each model with its comparison group: models linked by a chain of battles share a
    label; labels are 0, 1, ... in order of each group's smallest model index."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    met = np.zeros((n, n), dtype=bool)
    met[a, b] = True
    for i, j in zip(*np.nonzero(met | met.T), strict=True):
        ri, rj = root(int(i)), root(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = [root(i) for i in range(n)]
    labels = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return np.array([labels[r] for r in roots], dtype=np.int64)


def anchored(fitted: FloatArray, anchor: int, value: float = INIT) -> FloatArray:
    """Shift ratings (..., n) so that model `anchor` sits at `value` in every row.

    BT identifies only differences. Centring on the mean lets a newcomer's lucky streak drag
    every other model down by its share of the mean; fixing one model instead leaves the others
    where their own battles put them.
    """
    return fitted - fitted[..., anchor : anchor + 1] + value


def intervals(samples: FloatArray, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Percentile interval of each column."""
    tail = (1.0 - level) / 2 * 100
    lower, upper = np.percentile(samples, [tail, 100 - tail], axis=0)
    return lower, upper


def ranks(lower: Sequence[float] | FloatArray, upper: Sequence[float] | FloatArray) -> list[int]:
    """1 + the number of models whose lower bound is above this model's upper bound."""
    lo, hi = np.asarray(lower), np.asarray(upper)
    return [1 + int((lo > hi[i]).sum()) for i in range(len(hi))]


def style_diffs(style: FloatArray) -> FloatArray:
    """Per battle, each style feature as (A - B) / (A + B), then scaled to unit variance.

    `style` is (battles, 2 sides, features). The ratio keeps one very long battle from
    dominating; the scaling makes the coefficients comparable (as LMArena's style control).
    """
    a, b = style[:, 0, :], style[:, 1, :]
    total = a + b
    diff = np.divide(a - b, total, out=np.zeros_like(a), where=total > 0)
    spread = diff.std(axis=0)
    return np.divide(diff, spread, out=np.zeros_like(diff), where=spread > 0)


def fit_bt_style(
    a: IntArray,
    b: IntArray,
    score: FloatArray,
    features: FloatArray,
    n: int,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> tuple[FloatArray, FloatArray]:
    """Bradley-Terry with style covariates: P(A wins) = sigmoid(theta_a - theta_b + x . beta).

    `features` (battles, k) are the battles' style differences (see `style_diffs`). Returns the
    Elo-scale ratings with the style effect taken out (mean INIT) and beta (per unit of a
    feature, in Elo points). Newton on the n + k parameters; only models x models and k x k
    sums are formed, never a battles x models matrix.
    """
    k = features.shape[1]
    x = features
    theta, beta = np.zeros(n), np.zeros(k)
    gauge = np.zeros((n + k, n + k))
    gauge[:n, :n] = 1.0 / n
    ridge = _RIDGE * np.eye(n + k)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(theta[b] - theta[a] - x @ beta))
        r, w = score - p, p * (1.0 - p)
        grad = np.concatenate(
            [np.bincount(a, r, n) - np.bincount(b, r, n), x.T @ r]
        ) - _RIDGE * np.concatenate([theta, beta])
        info = np.zeros((n + k, n + k))
        pair = np.bincount(a * n + b, w, n * n).reshape(n, n)
        pair = pair + pair.T
        info[:n, :n] = np.diag(pair.sum(axis=1)) - pair
        wx = w[:, None] * x
        cross = np.stack(
            [np.bincount(a, wx[:, f], n) - np.bincount(b, wx[:, f], n) for f in range(k)], axis=1
        )
        info[:n, n:], info[n:, :n] = cross, cross.T
        info[n:, n:] = x.T @ wx
        step = np.linalg.solve(info + ridge + gauge, grad)
        biggest = float(np.abs(step).max())
        step *= min(1.0, 2.0 / max(biggest, 1e-300))
        theta += step[:n]
        beta += step[n:]
        if biggest < tol:
            break
    theta -= theta.mean()
    return INIT + _TO_ELO * theta, _TO_ELO * beta
