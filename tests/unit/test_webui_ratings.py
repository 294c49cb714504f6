"""Ratings on synthetic battles: Elo arithmetic, BT recovers known strengths, bootstrap coverage."""

from __future__ import annotations

import numpy as np
import pytest

from webui import ratings

TRUE = np.array([1120.0, 1060.0, 1000.0, 940.0, 880.0])  # mean 1000, like the fitted ratings


def simulate(
    true: np.ndarray, battles: int, rng: np.random.Generator, tie_rate: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random pairs; A wins with the BT probability; some battles become ties."""
    n = len(true)
    a = rng.integers(0, n, battles)
    b = (a + rng.integers(1, n, battles)) % n  # a different model
    p_a = 1.0 / (1.0 + 10 ** ((true[b] - true[a]) / 400))
    score = (rng.random(battles) < p_a).astype(np.float64)
    score[rng.random(battles) < tie_rate] = 0.5
    return a, b, score


def test_online_elo_one_battle_moves_k_over_two() -> None:
    a, b = np.array([0]), np.array([1])
    assert ratings.online_elo(a, b, np.array([1.0]), 2).tolist() == [1002.0, 998.0]
    assert ratings.online_elo(a, b, np.array([0.5]), 2).tolist() == [1000.0, 1000.0]
    assert ratings.online_elo(a, b, np.array([0.0]), 2, k=32).tolist() == [984.0, 1016.0]


def test_online_elo_follows_vote_order() -> None:
    a, b = np.array([0, 0]), np.array([1, 1])
    first_win = ratings.online_elo(a, b, np.array([1.0, 0.0]), 2)
    first_loss = ratings.online_elo(a, b, np.array([0.0, 1.0]), 2)
    assert first_win[0] < 1000 < first_loss[0]  # the later result weighs more
    assert first_win.sum() == pytest.approx(2000)


def test_win_matrix_counts_ties_as_half_a_win() -> None:
    w = ratings.win_matrices(np.array([0, 0, 1]), np.array([1, 1, 0]), np.array([1, 0.5, 1]), 2)
    assert w[0].tolist() == [[0.0, 1.5], [1.5, 0.0]]


def test_bt_recovers_the_true_strengths() -> None:
    rng = np.random.default_rng(7)
    a, b, score = simulate(TRUE, 6000, rng)
    fitted = ratings.fit_bt(ratings.win_matrices(a, b, score, len(TRUE)))[0]
    assert fitted.mean() == pytest.approx(1000.0)
    assert np.argsort(-fitted).tolist() == [0, 1, 2, 3, 4]
    assert np.abs(fitted - TRUE).max() < 25


def test_bt_with_ties_keeps_the_order() -> None:
    rng = np.random.default_rng(8)
    a, b, score = simulate(TRUE, 6000, rng, tie_rate=0.2)
    fitted = ratings.fit_bt(ratings.win_matrices(a, b, score, len(TRUE)))[0]
    assert np.argsort(-fitted).tolist() == [0, 1, 2, 3, 4]


def test_bt_stays_finite_for_an_unbeaten_model() -> None:
    wins = np.array([[0, 5, 5], [0, 0, 3], [0, 2, 0]], dtype=float)
    fitted = ratings.fit_bt(wins)
    assert np.isfinite(fitted).all()
    assert fitted[0] > fitted[1] > fitted[2]


def test_bt_fits_a_stack_like_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    stack = []
    for _ in range(4):
        a, b, score = simulate(TRUE, 300, rng)
        stack.append(ratings.win_matrices(a, b, score, len(TRUE))[0])
    together = ratings.fit_bt(np.stack(stack))
    alone = np.stack([ratings.fit_bt(w) for w in stack])
    assert np.allclose(together, alone, atol=1e-6)


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    a, b, score = simulate(TRUE, 500, np.random.default_rng(1))
    one = ratings.bootstrap_bt(a, b, score, 5, 100, np.random.default_rng(42))
    two = ratings.bootstrap_bt(a, b, score, 5, 100, np.random.default_rng(42))
    assert one.shape == (100, 5)
    assert np.array_equal(one, two)


def test_bootstrap_intervals_cover_the_truth_about_95_percent() -> None:
    """Repeated simulations: the 95 % intervals hold the true rating ~95 % of the time."""
    rng = np.random.default_rng(2024)
    true = TRUE[:4] - TRUE[:4].mean() + 1000
    covered = total = 0
    for _ in range(80):
        a, b, score = simulate(true, 600, rng)
        samples = ratings.bootstrap_bt(a, b, score, len(true), 200, rng)
        lower, upper = ratings.intervals(samples)
        covered += int(((lower <= true) & (true <= upper)).sum())
        total += len(true)
    assert 0.88 <= covered / total <= 0.99, covered / total


def test_rank_counts_models_clearly_above() -> None:
    # A and B overlap (both rank 1); C is clearly below both; D overlaps C only.
    lower = [1050, 1040, 980, 960]
    upper = [1100, 1090, 1030, 990]
    assert ratings.ranks(lower, upper) == [1, 1, 3, 3]
    assert ratings.ranks([1000], [1010]) == [1]


def test_win_matrix_builds_models_by_models_from_bootstrap_counts() -> None:
    a, b, score = np.array([0, 1]), np.array([1, 2]), np.array([1.0, 0.5])
    w = ratings.win_matrices(a, b, score, 3, np.array([[2, 0], [1, 3]]))
    assert w.shape == (2, 3, 3)
    assert w[0].tolist() == [[0, 2, 0], [0, 0, 0], [0, 0, 0]]
    assert w[1].tolist() == [[0, 1, 0], [0, 0, 1.5], [0, 1.5, 0]]


def test_components_find_groups_that_never_met() -> None:
    a, b = np.array([0, 3, 1]), np.array([1, 4, 2])
    assert ratings.components(a, b, 6).tolist() == [0, 0, 0, 1, 1, 2]
    none = np.array([], dtype=np.int64)
    assert ratings.components(none, none, 2).tolist() == [0, 1]


def test_anchored_fixes_one_model_in_every_row() -> None:
    fitted = np.array([[1010.0, 990.0, 1000.0], [1020.0, 980.0, 1000.0]])
    out = ratings.anchored(fitted, 1)
    assert out[:, 1].tolist() == [1000.0, 1000.0]
    assert np.allclose(out - out[:, :1], fitted - fitted[:, :1])  # differences kept


def planted_length_bias(
    rng: np.random.Generator, battles: int = 8000
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Four models of equal strength except model 3 (+60); model 0 writes twice as long, and
    voters favour the longer answer by a fixed amount whatever the model."""
    true = np.array([1000.0, 1000.0, 1000.0, 1060.0])
    length = np.array([800.0, 400.0, 400.0, 400.0])
    a = rng.integers(0, 4, battles)
    b = (a + rng.integers(1, 4, battles)) % 4
    style = np.zeros((battles, 2, 4))
    style[:, 0, 0] = length[a] * rng.uniform(0.8, 1.2, battles)
    style[:, 1, 0] = length[b] * rng.uniform(0.8, 1.2, battles)
    x = ratings.style_diffs(style)
    bias = 1.0  # natural-log odds per unit of the scaled length difference
    logit = (true[a] - true[b]) * np.log(10) / 400 + bias * x[:, 0]
    score = (rng.random(battles) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return a, b, score, style, true


def test_style_control_removes_a_planted_length_bias() -> None:
    a, b, score, style, _ = planted_length_bias(np.random.default_rng(11))
    plain = ratings.fit_bt(ratings.win_matrices(a, b, score, 4))[0]
    controlled, beta = ratings.fit_bt_style(a, b, score, ratings.style_diffs(style), 4)
    assert plain[0] - plain[1] > 100  # plain BT rewards the longer writer
    assert abs(controlled[0] - controlled[1]) < 30  # style control takes its advantage away
    assert controlled[3] - controlled[1] == pytest.approx(60, abs=30)  # real skill stays
    assert beta[0] > 100 and np.abs(beta[1:]).max() < 1e-6  # the bias is put on length


def test_style_control_without_style_matches_plain_bt() -> None:
    a, b, score = simulate(TRUE, 3000, np.random.default_rng(5))
    plain = ratings.fit_bt(ratings.win_matrices(a, b, score, 5))[0]
    controlled, beta = ratings.fit_bt_style(a, b, score, np.zeros((3000, 4)), 5)
    assert np.allclose(plain, controlled, atol=1e-3)
    assert np.allclose(beta, 0)
