"""The web UI app in-process: it starts against a gateway, serves the page, and refuses bad
arena weights at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import FakeGateway, loopback, serve

from webui.app import create_app
from webui.sampling import ArenaConfigError
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
