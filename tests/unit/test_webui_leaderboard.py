"""Which votes count, the leaderboard built from them, and its table/JSON/CSV/SVG forms."""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Any

from webui import leaderboard, report
from webui.leaderboard import Battle

STRENGTH = {"alpha": 1150.0, "beta": 1000.0, "gamma": 850.0}


def vote(
    a: str, b: str, winner: str, *, anonymous: bool = True, text: str = "hello"
) -> dict[str, Any]:
    return {
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


def simulated_votes(count: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    names = sorted(STRENGTH)
    votes = []
    for _ in range(count):
        a, b = rng.sample(names, 2)
        p_a = 1 / (1 + 10 ** ((STRENGTH[b] - STRENGTH[a]) / 400))
        r = rng.random()
        winner = "tie" if r < 0.1 else "model_a" if rng.random() < p_a else "model_b"
        votes.append(vote(a, b, winner))
    return votes


def test_only_anonymous_valid_battles_count() -> None:
    records = [
        vote("a", "b", "model_a"),
        vote("a", "b", "model_b", anonymous=False),  # side-by-side: names were known
        vote("a", "a", "model_a"),  # a model against itself
        vote("a", "b", "model_c"),  # no such outcome
        {"winner": "tie"},
    ]
    battles, counts = leaderboard.battles_from_votes(records, [])
    assert battles == [Battle("a", "b", "model_a")]
    assert (counts.stored, counts.named, counts.invalid, counts.counted) == (5, 1, 3, 1)


def test_identity_words_drop_battles_whole_words_any_case() -> None:
    records = [
        vote("m1", "m2", "model_a", text="I was made by OpenAI."),  # a vendor word
        vote("m1", "m2", "model_a", text="Ask M2 instead"),  # a model's own name
        vote("m1", "m2", "model_a", text="metadata about openairlines"),  # not whole words
        vote("m1", "m2", "model_b", text="plain answer"),
    ]
    battles, counts = leaderboard.battles_from_votes(records, ["openai", "meta"])
    assert counts.identity == 2
    assert [b.winner for b in battles] == ["model_a", "model_b"]


def test_identity_words_search_prompts_and_both_sides() -> None:
    record = vote("m1", "m2", "tie")
    record["conversation_b"][1]["content"] = "As Claude, I think"
    assert leaderboard.battles_from_votes([record], ["claude"])[1].identity == 1
    record = vote("m1", "m2", "tie")
    record["conversation_a"][0]["content"] = "are you claude?"
    assert leaderboard.battles_from_votes([record], ["Claude"])[1].identity == 1


def test_leaderboard_orders_simulated_models_and_counts_votes() -> None:
    board = leaderboard.build(simulated_votes(900), [], rounds=200, seed=1)
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
    board = leaderboard.build(records, [], rounds=100)
    assert {r.model: (r.wins, r.ties, r.losses) for r in board.rows} == {
        "x": (0, 2, 0),
        "y": (0, 2, 0),
    }
    assert {r.rating for r in board.rows} == {1000.0}
    assert {r.elo for r in board.rows} == {1000.0}


def test_same_votes_same_seed_same_numbers() -> None:
    votes = simulated_votes(300, seed=5)
    one = leaderboard.build(votes, [], rounds=150, seed=3)
    two = leaderboard.build(votes, [], rounds=150, seed=3)
    assert one.rows == two.rows


def test_empty_store_gives_an_empty_board() -> None:
    board = leaderboard.build([], [], rounds=100)
    assert board.rows == [] and board.counts.counted == 0
    assert "Battles counted: 0 of 0 votes stored" in report.as_table(board)
    assert json.loads(report.as_json(board))["models"] == []
    assert report.as_csv(board).splitlines() == [",".join(report.COLUMNS)]
    assert "No battles" in report.interval_svg([])


def test_formats_carry_the_same_numbers() -> None:
    board = leaderboard.build(simulated_votes(200), [], rounds=100)
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
    board = leaderboard.build(simulated_votes(200), [], rounds=100)
    svg = report.interval_svg(board.rows)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 3
    for r in board.rows:
        assert f"{r.rank}. {r.model}" in svg
