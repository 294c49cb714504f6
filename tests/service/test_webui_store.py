"""Votes round-trip through both stores (SQLite file, real Redis), and `corral leaderboard`
prints the same numbers from them as table, JSON and CSV."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import random
from pathlib import Path

import pytest
from harness import FakeGateway, loopback

from store import open_events
from webui import leaderboard
from webui.cli import add_leaderboard_subparser
from webui.service import Client
from webui.settings import WebUISettings
from webui.state import open_state

# "strong" always wins its battles, "weak" always loses, "mid" wins against "weak" only
EXPECTED_ORDER = ["strong", "mid", "weak"]


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'votes.db'}"


async def play_battles(store_url: str, battles: int) -> tuple[list[str], leaderboard.Leaderboard]:
    """Real arena rounds through WebUI (the better model gets the vote), and its leaderboard."""
    fake = FakeGateway({m: ["fine ", "answer"] for m in EXPECTED_ORDER}, delay=0.0)
    ids = []
    async with loopback(fake.app) as url:
        settings = WebUISettings(
            api_url=f"{url}/v1",
            store_url=store_url,
            ip_hash_salt="x",
            bootstrap_rounds=100,
            min_votes=1,
        )
        async with contextlib.AsyncExitStack() as stack:
            ui = await open_state(settings, stack, rng=random.Random(4))
            for i in range(battles):
                rnd = await ui.new_battle()
                client = Client(session=f"s{i}", ip=f"198.51.100.{i % 5}")
                async for _ in ui.send(rnd, f"question {i}", client):
                    pass
                a, b = (EXPECTED_ORDER.index(m) for m in rnd.models)
                await ui.vote(rnd, "model_a" if a < b else "model_b", client)
                ids.append(rnd.conversation_id)
            board = await ui.leaderboard()
    return ids, board


async def test_votes_round_trip(store_url: str) -> None:
    ids, _ = await play_battles(store_url, 6)
    log = open_events(store_url)
    try:
        votes = [r for _, r in await log.read("votes")]
        conversations = [r for _, r in await log.read("conversations")]
    finally:
        await log.close()
    assert [v["conversation_id"] for v in votes] == ids
    assert len(conversations) == 6
    for v in votes:
        assert v["anonymous"] is True and v["winner"] in ("model_a", "model_b")
        assert v["conversation_a"][0]["content"].startswith("question ")
        assert not v["ip_hash"].startswith("198.")
    # the same address hashes the same way (votes 0 and 5 share one)
    assert votes[0]["ip_hash"] == votes[5]["ip_hash"] != votes[1]["ip_hash"]


def leaderboard_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="corral")
    add_leaderboard_subparser(parser.add_subparsers(dest="command"))
    parsed = parser.parse_args(["leaderboard", *args])
    code = parsed.func(parsed)
    return code, capsys.readouterr().out


def test_leaderboard_cli_formats(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, page = asyncio.run(play_battles(store_url, 24))  # the CLI runs its own event loop
    common = ["--store-url", store_url, "--bootstrap-rounds", "100", "--min-votes", "1"]
    code, out = leaderboard_cli([*common, "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert [m["model"] for m in doc["models"]] == EXPECTED_ORDER
    assert doc["votes"]["counted"] == 24 and doc["bootstrap_rounds"] == 100
    assert sum(m["votes"] for m in doc["models"]) == 48
    assert doc["models"] == page.as_dict()["models"]  # the web page shows the same numbers

    code, out = leaderboard_cli([*common, "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["model"] for r in rows] == EXPECTED_ORDER
    for row, model in zip(rows, doc["models"], strict=True):
        assert float(row["rating"]) == model["rating"]
        assert float(row["lower"]) == model["lower"] and float(row["upper"]) == model["upper"]
        assert int(row["rank"]) == model["rank"]

    code, out = leaderboard_cli(common, capsys)  # table is the default
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["Rank", "Model"]
    assert [line.split()[1] for line in lines[2:5]] == EXPECTED_ORDER
    assert f"{doc['models'][0]['rating']:.1f}" in lines[2]
    assert "Battles counted: 24 of 24 votes stored" in out


def test_leaderboard_cli_reports_an_unreachable_store(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="corral")
    add_leaderboard_subparser(parser.add_subparsers(dest="command"))
    parsed = parser.parse_args(["leaderboard", "--store-url", "redis://127.0.0.1:1/0"])
    assert parsed.func(parsed) == 1
    assert "cannot read the votes" in capsys.readouterr().err
