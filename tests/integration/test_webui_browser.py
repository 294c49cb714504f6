"""The web UI end to end: a real browser (Debian's Chromium, headless, via Playwright) against
`corral up` serving two real models (SmolLM2 and a tiny random LLaMA).

One battle: send a prompt, watch both answers stream, vote, see the names revealed and the
input closed, then find the vote counted on the leaderboard. Screenshots of each step land in
test-output/webui/ (git-ignored).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import DESKTOP, OUTPUT, chromium
from procs import Service, free_port

SHOTS = OUTPUT / "webui"
PROMPT = "Write three short sentences about the sea."


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path
) -> Iterator[dict[str, Any]]:
    logs = tmp_path_factory.mktemp("webui-logs")
    api, ctl, worker, ui_port = free_port(), free_port(), free_port(), free_port()
    env = {  # the web UI's settings; `corral up` passes its environment on
        "CORRAL_WEBUI_STORE_URL": f"sqlite:///{logs / 'corral.db'}",
        "CORRAL_WEBUI_TEMPERATURE": "0",
        "CORRAL_WEBUI_MAX_TOKENS": "48",
        "CORRAL_WEBUI_IDENTITY_WORDS": "[]",  # a tiny model's babble may name anything
        "CORRAL_WEBUI_IDENTITY_MAKERS": "[]",
        "CORRAL_WEBUI_MIN_VOTES": "1",  # one vote ranks both models here
        "CORRAL_WEBUI_IP_HASH_SALT": "browser-test",
    }
    up_args = [
        "corral.cli",
        "up",
        "--model",
        "smollm2",
        "--model",
        str(tiny_model_path),
        "--backend",
        "hf",
        "--api-port",
        str(api),
        "--controller-port",
        str(ctl),
        "--worker-port",
        str(worker),
        "--webui-port",
        str(ui_port),
    ]
    services = [Service("corral-up", up_args, logs, env=env).start()]
    try:
        names = sorted(["smollm2", tiny_model_path.name])
        services[0].wait_until(
            f"http://127.0.0.1:{api}/v1/models",
            900,
            ok=lambda r: sorted(m["id"] for m in r.json()["data"]) == names,
        )
        ui_url = f"http://127.0.0.1:{ui_port}"
        services[-1].wait_until(f"{ui_url}/health", 120)
        yield {"url": ui_url, "models": names, "services": services}
    finally:
        for service in reversed(services):
            service.stop()


@pytest.fixture
def page() -> Iterator[Any]:
    """A headless Chromium page; checked before the platform starts (the test asks first)."""
    for browser in chromium():
        page = browser.new_page(**DESKTOP)
        page.set_default_timeout(30_000)
        yield page


def _answers(page: Any) -> list[str]:
    """The latest bot message on each side ("" while there is none)."""
    texts = []
    for side in ("a", "b"):
        bots = page.locator(f"#battle-chat-{side} [data-testid='bot']")
        texts.append(bots.last.inner_text() if bots.count() else "")
    return texts


def test_battle_vote_and_leaderboard(page: Any, platform: dict[str, Any]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    models = platform["models"]
    page.goto(platform["url"], wait_until="domcontentloaded")
    page.locator("#terms-accept").click()
    page.locator("#battle-input textarea").fill(PROMPT)
    page.locator("#battle-send").click()

    # both answers stream: text shows up while the round is still open
    seen_partial = False
    vote_a = page.locator("#battle-vote-a")
    deadline = time.monotonic() + 240
    while True:
        finished = vote_a.is_enabled()
        answers = _answers(page)
        if not finished and any(a.strip() for a in answers):
            if not seen_partial:
                page.screenshot(path=SHOTS / "1-streaming.png")
            seen_partial = True
        if finished:
            break
        assert time.monotonic() < deadline, "the answers did not finish in time"
        time.sleep(0.05)
    assert seen_partial, "no text was shown before both answers finished"
    final = _answers(page)
    assert all(a.strip() for a in final), final
    page.screenshot(path=SHOTS / "2-answered.png")

    # names are hidden until the vote
    battle_text = (
        page.locator("#battle-chat-a").inner_text() + page.locator("#battle-chat-b").inner_text()
    )
    assert "Model A" in battle_text and "Model B" in battle_text
    assert not any(m in battle_text for m in models), battle_text

    vote_a.click()
    notice = page.locator("#battle-notice")
    notice.get_by_text("Vote saved").wait_for()
    label_a = page.locator("#battle-chat-a [data-testid='block-label']").inner_text()
    label_b = page.locator("#battle-chat-b [data-testid='block-label']").inner_text()
    winner = label_a.removeprefix("Model A: ").strip()
    loser = label_b.removeprefix("Model B: ").strip()
    assert sorted([winner, loser]) == models, (label_a, label_b)
    assert f"Model A was {winner}" in notice.inner_text()
    # the round is over: no more input, no second vote
    assert page.locator("#battle-input textarea").is_disabled()
    assert not vote_a.is_enabled() and not page.locator("#battle-vote-b").is_enabled()
    page.screenshot(path=SHOTS / "3-voted.png")

    page.get_by_role("tab", name="Leaderboard").click()
    summary = page.locator("#leaderboard-summary")
    summary.get_by_text("Battles counted: 1 of 1 votes stored").wait_for()
    rows = {}
    for row in page.locator("#leaderboard-table [role='row'][data-index]").all():
        cells = [c.strip() for c in row.locator("[role='gridcell']").all_inner_texts()]
        rows[cells[1]] = cells
    assert set(rows) == set(models), rows
    # columns: rank, model, rating, low, high, style-controlled, Elo, votes, W, T, L, group
    assert rows[winner][0] == "1" and rows[loser][0] == "2"  # the winner ranks first
    assert (rows[winner][7:11], rows[loser][7:11]) == (["1", "1", "0", "0"], ["1", "0", "0", "1"])
    assert (rows[winner][6], rows[loser][6]) == ("1002.0", "998.0")  # Elo, K=4
    assert page.locator("#leaderboard-plot svg circle").count() == 2
    page.screenshot(path=SHOTS / "4-leaderboard.png", full_page=True)
