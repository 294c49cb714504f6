"""The web UI app in-process: it starts against a gateway, serves the page, and refuses bad
arena weights at start-up."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path

import pytest
from harness import FakeGateway, loopback, serve

from webui.app import create_app
from webui.cli import add_leaderboard_subparser
from webui.sampling import ArenaConfigError
from webui.service import Client, WebUI
from webui.settings import WebUISettings

MODELS = {"m1": ["hi"], "m2": ["hello"]}


async def test_app_serves_health_and_the_page(tmp_path: Path) -> None:
    fake = FakeGateway(MODELS)
    async with loopback(fake.app) as url:
        settings = WebUISettings(api_url=f"{url}/v1", store_url=f"sqlite:///{tmp_path / 'db'}")
        app = create_app(settings)
        async with serve(app) as client:
            assert (await client.get("/health")).json() == {"status": "ok"}
            page = await client.get("/")
            assert page.status_code == 200 and "<html" in page.text.lower()
            config = (await client.get("/config")).json()
            labels = {c["props"].get("label") for c in config["components"]}
            assert {"Arena (battle)", "Arena (side-by-side)", "Chat", "Leaderboard"} <= labels
            assert app.state.service.settings is settings
            # nothing on the page names a model before a battle starts
            assert "m1" not in page.text and "m2" not in page.text


async def test_app_refuses_to_start_with_unknown_weighted_models(tmp_path: Path) -> None:
    fake = FakeGateway(MODELS)
    async with loopback(fake.app) as url:
        settings = WebUISettings(
            api_url=f"{url}/v1",
            store_url=f"sqlite:///{tmp_path / 'db'}",
            arena_weights={"m1": 1, "m9": 1},
            startup_timeout=0.3,
        )
        with pytest.raises(ArenaConfigError, match="does not serve: m9"):
            async with serve(create_app(settings)):
                pass


async def test_leaderboard_json_matches_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeGateway(MODELS, delay=0.0)
    store = f"sqlite:///{tmp_path / 'db'}"
    async with loopback(fake.app) as url:
        settings = WebUISettings(
            api_url=f"{url}/v1", store_url=store, min_votes=2, bootstrap_rounds=100
        )
        app = create_app(settings, rng=random.Random(2))
        async with serve(app) as client:
            page = await client.get("/")
            assert "corral_user" in page.cookies  # a signed user id for limits and caps
            ui: WebUI = app.state.service
            for i in range(6):
                rnd = await ui.new_battle()
                async for _ in ui.send(rnd, "hi", Client(session=f"u{i}", ip="192.0.2.1")):
                    pass
                await ui.vote(rnd, "model_a" if i % 3 else "model_b", Client(f"u{i}", None))
            served = (await client.get("/leaderboard.json")).json()
    parser = argparse.ArgumentParser(prog="corral")
    add_leaderboard_subparser(parser.add_subparsers(dest="command"))
    args = ["--store-url", store, "--min-votes", "2", "--bootstrap-rounds", "100"]
    parsed = parser.parse_args(["leaderboard", *args, "--format", "json"])
    assert await asyncio.to_thread(parsed.func, parsed) == 0  # it runs its own event loop
    assert served == json.loads(capsys.readouterr().out)
    assert served["votes"]["counted"] == 6 and len(served["models"]) == 2
