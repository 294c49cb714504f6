"""Which votes count, the leaderboard built from them (threshold, anchoring, comparison groups,
style control, retired models), and its table/JSON/CSV/SVG forms."""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Any

import pytest

from webui import leaderboard, report
from webui.identity import IdentityFilter
from webui.leaderboard import Options

STRENGTH = {"alpha": 1150.0, "beta": 1000.0, "gamma": 850.0}
FEW = Options(rounds=100, min_votes=1)


def vote(
    a: str, b: str, winner: str, *, anonymous: bool = True, text: str = "hello", vid: str = ""
) -> dict[str, Any]:
    return {
        "vote_id": vid or None,
        "model_a": a,
        "model_b": b,
        "winner": winner,
        "anonymous": anonymous,
        "conversation_a": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": text},
        ],
        "conversation_b": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "fine"},
        ],
    }


def simulated_votes(
    count: int, seed: int = 0, strength: dict[str, float] = STRENGTH
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    names = sorted(strength)
    votes = []
    for _ in range(count):
        a, b = rng.sample(names, 2)
        p_a = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
        r = rng.random()
        winner = "tie" if r < 0.1 else "model_a" if rng.random() < p_a else "model_b"
        votes.append(vote(a, b, winner))
    return votes


def build(records: list[dict[str, Any]], options: Options = FEW) -> leaderboard.Leaderboard:
    return leaderboard.build(records, IdentityFilter(["llama"], ["openai"]), options)


def ratings_of(board: leaderboard.Leaderboard) -> dict[str, float]:
    return {r.model: r.rating for r in board.rows}


def test_only_anonymous_valid_battles_count_once() -> None:
    records = [
        vote("a", "b", "model_a", vid="v1"),
        vote("a", "b", "model_a", vid="v1"),  # the same vote written twice (a retry)
        vote("a", "b", "model_b", anonymous=False),  # side-by-side: names were known
        vote("a", "a", "model_a"),  # a model against itself
        vote("a", "b", "model_c"),  # no such outcome
        {"winner": "tie"},
    ]
    counts = build(records).counts
    assert (counts.stored, counts.duplicate, counts.named, counts.invalid) == (6, 1, 1, 3)
    assert counts.counted == 1


def test_identity_is_judged_on_answers_for_votes_without_a_verdict() -> None:
    records = [
        vote("m1", "m2", "model_a", text="I was made by OpenAI."),  # a maker
        vote("m1", "m2", "model_a", text="Ask M2 instead"),  # model names are not banned
        vote("m1", "m2", "model_a", text="metadata about openairlines"),  # near misses
        vote("m1", "m2", "model_b", text="Llama3 here"),  # a family, digits glued
    ]
    counts = build(records).counts
    assert (counts.identity, counts.counted) == (2, 2)


def test_the_verdict_stored_with_a_vote_is_final() -> None:
    """Decided once at vote time: a later filter does not re-judge stored votes."""
    kept = {**vote("m1", "m2", "model_a", text="Llama here"), "identity": []}
    dropped = {**vote("m1", "m2", "model_a", text="plain"), "identity": ["meta"]}
    counts = build([kept, dropped]).counts
    assert (counts.identity, counts.counted) == (1, 1)


def test_leaderboard_orders_simulated_models_and_counts_votes() -> None:
    board = build(simulated_votes(900), Options(rounds=200, seed=1))
    assert [r.model for r in board.rows] == ["alpha", "beta", "gamma"]
    assert [r.rank for r in board.rows] == [1, 2, 3]
    assert sum(r.votes for r in board.rows) == 2 * 900
    for r in board.rows:
        assert r.lower <= r.rating <= r.upper
        assert r.wins + r.ties + r.losses == r.votes
    assert board.rows[0].elo > board.rows[2].elo
    assert board.counts.counted == 900


def test_ties_and_both_bad_are_half_a_win_each() -> None:
    records = [vote("x", "y", "tie"), vote("x", "y", "tie (bothbad)")]
    board = build(records)
    assert {r.model: (r.wins, r.ties, r.losses) for r in board.rows} == {
        "x": (0, 2, 0),
        "y": (0, 2, 0),
    }
    assert {r.rating for r in board.rows} == {1000.0}
    assert {r.elo for r in board.rows} == {1000.0}


def test_same_votes_same_seed_same_numbers() -> None:
    votes = simulated_votes(300, seed=5)
    one = build(votes, Options(rounds=150, seed=3))
    two = build(votes, Options(rounds=150, seed=3))
    assert one.rows == two.rows


def test_empty_store_gives_an_empty_board() -> None:
    board = build([])
    assert board.rows == [] and board.counts.counted == 0
    assert "Battles counted: 0 of 0 votes stored" in report.as_table(board)
    assert json.loads(report.as_json(board))["models"] == []
    assert report.as_csv(board).splitlines() == [",".join(report.CSV_COLUMNS)]
    assert "No battles" in report.interval_svg([])


def test_formats_carry_the_same_numbers() -> None:
    board = build(simulated_votes(200))
    doc = json.loads(report.as_json(board))
    rows = list(csv.DictReader(io.StringIO(report.as_csv(board))))
    table = report.as_table(board).splitlines()
    assert [m["model"] for m in doc["models"]] == [r["model"] for r in rows]
    assert doc["votes"]["counted"] == 200
    for m, r, line in zip(doc["models"], rows, table[2:], strict=False):
        assert float(r["rating"]) == m["rating"]
        assert int(r["votes"]) == m["votes"]
        assert line.split()[1] == m["model"]
        assert f"{m['rating']:.1f}" in line


def test_svg_plot_has_a_row_per_model() -> None:
    board = build(simulated_votes(200))
    svg = report.interval_svg(board.rows)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 3
    for r in board.rows:
        assert f"{r.rank}. {r.model}" in svg


def test_provisional_models_are_listed_not_ranked_and_move_nobody() -> None:
    established = simulated_votes(600, seed=2)
    before = build(established, Options(rounds=100, min_votes=20))
    lucky = [vote("newcomer", "gamma", "model_a") for _ in range(5)]  # 5 wins out of 5
    after = build(established + lucky, Options(rounds=100, min_votes=20))
    assert [p.model for p in after.provisional] == ["newcomer"]
    assert (after.provisional[0].votes, after.provisional[0].wins) == (5, 5)
    assert "newcomer" not in ratings_of(after)
    assert ratings_of(after) == ratings_of(before)  # its battles are not fitted
    assert [(r.lower, r.upper) for r in after.rows] == [(r.lower, r.upper) for r in before.rows]
    assert ",newcomer,,,,,,5,5,0,0,,provisional" in report.as_csv(after)
    assert report.table_rows(after)[-1][:3] == ["-", "newcomer", "provisional"]


def test_one_vote_shows_no_certain_ratings() -> None:
    board = build([vote("x", "y", "model_a")], Options(rounds=100))  # default threshold 20
    assert board.rows == [] and {p.model for p in board.provisional} == {"x", "y"}


def test_anchored_ratings_stay_put_when_a_lucky_newcomer_is_ranked() -> None:
    established = simulated_votes(900, seed=4)
    options = Options(rounds=100, min_votes=20)
    before = ratings_of(build(established, options))
    lucky = [vote("newcomer", "gamma", "model_a") for _ in range(25)]
    after_board = build(established + lucky, options)
    after = ratings_of(after_board)
    assert after_board.groups[0].anchor == "beta"  # the most battles; fixed at 1000
    assert after["beta"] == 1000.0
    assert abs(after["alpha"] - before["alpha"]) < 1.0
    assert abs(after["gamma"] - before["gamma"]) < 15.0  # it did lose 25 more battles
    # centred on the mean, the newcomer's streak would have dragged everyone down a lot
    centred = {m: r - sum(after.values()) / len(after) + 1000 for m, r in after.items()}
    assert before["alpha"] - centred["alpha"] > 50


def test_a_configured_anchor_is_fixed_at_1000() -> None:
    board = build(simulated_votes(300), Options(rounds=100, anchor="gamma"))
    assert ratings_of(board)["gamma"] == 1000.0
    assert board.groups[0].anchor == "gamma"
    assert "gamma (group 1) is fixed at 1000" in report.footnote(board)


def test_disconnected_groups_are_rated_apart_and_flagged() -> None:
    left = simulated_votes(200, seed=6, strength={"a1": 1100.0, "a2": 900.0})
    right = simulated_votes(120, seed=7, strength={"b1": 1000.0, "b2": 1000.0, "b3": 800.0})
    board = build(left + right, Options(rounds=100, min_votes=20))
    assert [(g.number, g.models) for g in board.groups] == [(1, 2), (2, 3)]
    groups = {r.model: r.group for r in board.rows}
    assert groups == {"a1": 1, "a2": 1, "b1": 2, "b2": 2, "b3": 2}
    assert [r.rank for r in board.rows if r.group == 1] == [1, 2]
    assert min(r.rank for r in board.rows if r.group == 2) == 1  # ranked within its group
    assert "WARNING: 2 comparison groups" in report.footnote(board)
    assert json.loads(report.as_json(board))["groups"][1]["models"] == 3


def test_retired_models_leave_the_board_but_their_votes_stay() -> None:
    votes = simulated_votes(600, seed=8)
    full = build(votes, Options(rounds=100))
    retired = build(votes, Options(rounds=100, retired=("gamma",)))
    assert "gamma" not in ratings_of(retired) and retired.counts.counted == 600
    assert {m: r for m, r in ratings_of(full).items() if m != "gamma"} == ratings_of(retired)


def test_style_controlled_column_is_filled() -> None:
    board = build(simulated_votes(300))
    assert all(r.style is not None for r in board.rows)
    assert set(board.style_coefficients) == {"length", "headers", "lists", "bold"}
    assert "Style-controlled" in report.as_table(board)


@pytest.mark.parametrize("fmt", sorted(report.FORMATS))
def test_every_format_prints_an_empty_board(fmt: str) -> None:
    assert report.FORMATS[fmt](build([]))
