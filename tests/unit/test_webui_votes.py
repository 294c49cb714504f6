"""The vote projection: style features, the verdict kept with a vote, the table grown vote by
vote (dedupe, win matrix), and incremental loading, schema-1 votes included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from webui import votes
from webui.identity import IdentityFilter

FILTER = IdentityFilter(["llama"], ["meta"])


class ListLog:
    """The EventLog interface over lists; counts the records each read returns."""

    def __init__(self) -> None:
        self.streams: dict[str, list[dict[str, Any]]] = {}
        self.returned = 0

    async def append(self, stream: str, record: Mapping[str, Any], key: str | None = None) -> str:
        self.streams.setdefault(stream, []).append(dict(record))
        return str(len(self.streams[stream]))

    async def read(
        self, stream: str, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        rows = [(str(i + 1), r) for i, r in enumerate(self.streams.get(stream, []))]
        rows = [row for row in rows if after is None or int(row[0]) > int(after)][:limit]
        self.returned += len(rows)
        return rows

    async def close(self) -> None:
        pass


def full_vote(vid: str, a: str = "m1", b: str = "m2", answer: str = "fine") -> dict[str, Any]:
    return {
        "vote_id": vid,
        "model_a": a,
        "model_b": b,
        "winner": "model_a",
        "anonymous": True,
        "conversation_a": [
            {"role": "user", "content": "Who made Llama?"},
            {"role": "assistant", "content": answer},
        ],
        "conversation_b": [
            {"role": "user", "content": "Who made Llama?"},
            {"role": "assistant", "content": "# Title\n- one\n- two\n**bold**"},
        ],
    }


def test_style_features_count_length_headers_lists_and_bold() -> None:
    side = full_vote("v")["conversation_b"]
    text = side[1]["content"]
    assert votes.style_features(side) == [float(len(text)), 1.0, 2.0, 1.0]
    assert votes.style_features([]) == [0.0, 0.0, 0.0, 0.0]


def test_judge_looks_at_answers_only() -> None:
    # the prompt names a family; only an answer that does counts
    assert votes.judge(full_vote("v", answer="It was Meta."), FILTER)["identity"] == ["meta"]
    assert votes.judge(full_vote("v", answer="A company."), FILTER)["identity"] == []


def test_projection_keeps_a_stored_verdict_and_judges_old_votes() -> None:
    old = full_vote("v1", answer="I am Llama")
    assert votes.project(old, FILTER)["identity"] == ["llama"]
    new = {**old, "identity": [], "style": [[1, 0, 0, 0], [2, 0, 0, 0]]}
    compact = votes.project(new, FILTER)
    assert compact["identity"] == [] and compact["style"] == [[1, 0, 0, 0], [2, 0, 0, 0]]
    assert "conversation_a" not in compact and compact["schema"] == votes.SCHEMA


def test_table_counts_each_vote_once_and_keeps_the_win_matrix() -> None:
    table = votes.VoteTable(FILTER)
    for record in [
        votes.project(full_vote("v1")),
        votes.project(full_vote("v1")),  # duplicate id
        votes.project(full_vote("v2", "m2", "m3")),
        {**votes.project(full_vote("v3")), "identity": ["meta"]},
        {**votes.project(full_vote("v4")), "anonymous": False},
    ]:
        table.add(record)
    c = table.counts
    assert (c.stored, c.duplicate, c.identity, c.named, c.counted) == (5, 1, 1, 1, 2)
    assert table.names == ["m1", "m2", "m3"]
    assert table.wins().tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert table.votes_by_model() == {"m1": 1, "m2": 2, "m3": 1}
    battles = table.battles()
    assert battles.a.tolist() == [0, 1] and battles.score.tolist() == [1.0, 1.0]
    assert battles.style.shape == (2, 2, 4)


def test_table_grows_past_its_first_arrays() -> None:
    table = votes.VoteTable()
    judged = votes.project({**full_vote("v"), **votes.judge(full_vote("v"), FILTER)})
    for i in range(3000):
        table.add({**judged, "vote_id": f"v{i}"})
    assert table.counts.counted == 3000 and len(table.battles().a) == 3000
    assert np.isfinite(table.battles().style).all()


async def test_load_reads_old_votes_once_then_only_the_projection() -> None:
    log = ListLog()
    for i in range(3):  # schema-1 votes, from before the projection
        await log.append(votes.VOTES, full_vote(f"old{i}", answer="I am Llama" if i else "ok"))
    for i in range(4):
        record = {**full_vote(f"new{i}"), "schema": 2, **votes.judge(full_vote("x"), FILTER)}
        await log.append(votes.VOTES, record)
        await log.append(votes.VOTE_INDEX, votes.project(record))
    table = votes.VoteTable(FILTER)
    assert await votes.load(log, table, page=3) == 3 + 4
    assert (table.counts.counted, table.counts.identity) == (5, 2)
    assert table.legacy_done
    returned = log.returned
    assert await votes.load(log, table, page=3) == 0  # nothing new: nothing absorbed
    assert log.returned == returned  # and no old vote read again
    await log.append(votes.VOTE_INDEX, votes.project({**full_vote("new9"), "identity": []}))
    assert await votes.load(log, table) == 1
    assert table.counts.counted == 6
