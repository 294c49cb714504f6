"""Battle draws: weights respected (0 never drawn), sides shuffled, bad tables refused."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError

from webui.sampling import (
    ArenaConfigError,
    balanced,
    check_weights,
    draw_pair,
    effective_weights,
)
from webui.settings import WebUISettings

SERVED = ["m1", "m2", "m3", "m4"]


def test_a_zero_weight_is_never_drawn() -> None:
    rng = random.Random(0)
    weights = {"m1": 1.0, "m2": 0.0, "m3": 2.0, "m4": 1.0}
    seen = Counter(m for _ in range(3000) for m in draw_pair(weights, rng))
    assert seen["m2"] == 0
    assert set(seen) == {"m1", "m3", "m4"}
    assert seen["m3"] > seen["m1"]  # heavier, drawn more often


def test_pairs_are_distinct_and_sides_shuffled() -> None:
    rng = random.Random(1)
    pairs = [draw_pair({"m1": 5.0, "m2": 1.0}, rng) for _ in range(400)]
    assert all(a != b for a, b in pairs)
    left = Counter(a for a, _ in pairs)
    # the heavy model is drawn first far more often, yet sits left only about half the time
    assert 150 < left["m1"] < 250


def test_draws_are_reproducible_with_a_seeded_random() -> None:
    weights = {m: 1.0 for m in SERVED}
    one = [draw_pair(weights, random.Random(9)) for _ in range(5)]
    two = [draw_pair(weights, random.Random(9)) for _ in range(5)]
    assert one == two


def test_draw_frequencies_follow_the_weights() -> None:
    rng = random.Random(2)
    weights = {"m1": 1.0, "m2": 1.0, "m3": 1.0}
    seen = Counter(frozenset(draw_pair(weights, rng)) for _ in range(3000))
    assert len(seen) == 3
    assert all(800 < c < 1200 for c in seen.values())


def test_fewer_than_two_drawable_models_is_an_error() -> None:
    with pytest.raises(ArenaConfigError, match="two models"):
        draw_pair({"m1": 1.0, "m2": 0.0}, random.Random(0))
    with pytest.raises(ArenaConfigError):
        draw_pair({}, random.Random(0))


def test_default_weights_are_every_served_model() -> None:
    assert effective_weights({}, SERVED) == {m: 1.0 for m in SERVED}
    assert effective_weights({"m1": 2, "m2": 0, "gone": 1}, SERVED) == {"m1": 2.0}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"m1": 1.0, "nope": 1.0}, "does not serve: nope"),
        ({"m1": 0.0, "m2": 0.0}, "every arena weight is 0"),
        ({"m1": 1.0, "m2": 0.0}, "only m1 has an arena weight above 0"),
    ],
)
def test_bad_weight_tables_are_start_up_errors(weights: dict[str, float], message: str) -> None:
    with pytest.raises(ArenaConfigError, match=message):
        check_weights(weights, SERVED)


def test_good_weight_tables_pass() -> None:
    check_weights({}, SERVED)
    check_weights({"m1": 1.0, "m2": 0.5, "m3": 0.0}, SERVED)


def test_settings_refuse_all_zero_and_negative_weights() -> None:
    with pytest.raises(ValidationError, match="every arena weight is 0"):
        WebUISettings(arena_weights={"m1": 0, "m2": 0})
    with pytest.raises(ValidationError):
        WebUISettings(arena_weights={"m1": -1, "m2": 1})
    with pytest.raises(ValidationError):
        WebUISettings(arena_weights={"m1": float("nan"), "m2": 1})


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_WEBUI_ARENA_WEIGHTS", '{"m1": 2, "m2": 1}')
    monkeypatch.setenv("CORRAL_STORE_URL", "redis://127.0.0.1:6379/5")
    monkeypatch.setenv("CORRAL_WEBUI_PORT", "7999")
    s = WebUISettings()
    assert s.arena_weights == {"m1": 2.0, "m2": 1.0}
    assert s.store_url == "redis://127.0.0.1:6379/5"
    assert (s.host, s.port, s.api_url) == ("127.0.0.1", 7999, "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("CORRAL_WEBUI_STORE_URL", "sqlite:///votes.db")
    assert WebUISettings().store_url == "sqlite:///votes.db"


def test_models_short_of_the_threshold_are_drawn_more() -> None:
    weights = {"old1": 1.0, "old2": 1.0, "new": 1.0}
    votes = {"old1": 500, "old2": 40, "new": 0}
    boosted = balanced(weights, votes, min_votes=20, boost=3.0)
    assert boosted == {"old1": 1.0, "old2": 1.0, "new": 4.0}
    assert balanced(weights, {**votes, "new": 10}, 20, 3.0)["new"] == 2.5  # fades to 1x
    rng = random.Random(5)
    seen = Counter(m for _ in range(3000) for m in draw_pair(boosted, rng))
    assert seen["new"] > 1.4 * seen["old1"]


def test_retired_models_are_never_drawn() -> None:
    assert effective_weights({}, SERVED, retired=["m2"]) == {"m1": 1.0, "m3": 1.0, "m4": 1.0}
    weights = {"m1": 1.0, "m2": 5.0, "m3": 1.0}
    assert effective_weights(weights, SERVED, retired=["m2"]) == {"m1": 1.0, "m3": 1.0}
