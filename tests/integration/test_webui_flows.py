"""The web UI as people use it, in a real browser (Debian's Chromium via Playwright), against
the web UI (its own process) and a fake gateway on loopback (in a thread of this process), so
each answer's timing, failures and length are the test's to choose.

What is checked is what a user sees: the prompt echoed the moment it is sent, one round for
Enter then Send, Stop and New round / Clear / another model during streaming leaving a working
page (and the streams closed), failed turns that recover, context budgets, text shown as
written, the turn counter, the phone layout, focus and the live notice. Screenshots of the
main states land in test-output/webui-flows/.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import DESKTOP, OUTPUT, PHONE, chromium
from harness import FakeGateway, loopback
from procs import Service, free_port

SHOTS = OUTPUT / "webui-flows"
WORDS = [f"word{i} " for i in range(400)]  # 400 pieces: about 20 s at the fake's pace
MAX_TURNS = 3
LEFT, RIGHT = "alpha-7b", "omega-7b"  # not English words, so the anonymity checks mean something


class Platform:
    """The web UI (`python -m webui`, a process of its own) and a fake gateway, served by an
    event loop in a thread of this process so that the test can change what it answers."""

    def __init__(self, tmp: Path) -> None:
        self.fake = FakeGateway({LEFT: ["hi"], RIGHT: ["hello"]}, delay=0.05)
        self.tmp = tmp
        self.url = ""
        self.webui: Service | None = None
        self._loop = asyncio.new_event_loop()
        self._api = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with loopback(self.fake.app) as api:
            self._api = api
            self._ready.set()
            await self._stop.wait()

    def start(self) -> Platform:
        self._thread.start()
        assert self._ready.wait(30), "the fake gateway did not start"
        port = free_port()
        env = {
            "CORRAL_WEBUI_API_URL": f"{self._api}/v1",
            "CORRAL_WEBUI_STORE_URL": f"sqlite:///{self.tmp / 'corral.db'}",
            "CORRAL_WEBUI_TEMPERATURE": "0",
            "CORRAL_WEBUI_MAX_TOKENS": "48",
            "CORRAL_WEBUI_MAX_TURNS": str(MAX_TURNS),
            "CORRAL_WEBUI_MODELS_REFRESH_S": "0",
            "CORRAL_WEBUI_SESSION_RATE_LIMIT": "0",
            "CORRAL_WEBUI_IP_RATE_LIMIT": "0",
            "CORRAL_WEBUI_IP_HASH_SALT": "flows",
        }
        self.webui = Service("webui", ["webui", "--port", str(port)], self.tmp, env=env).start()
        self.url = f"http://127.0.0.1:{port}"
        self.webui.wait_until(f"{self.url}/health", 120)
        return self

    def close(self) -> None:
        if self.webui is not None:
            self.webui.stop()
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()

    def models(self, left: Any, right: Any) -> None:
        """What each model answers from now on (see FakeGateway)."""
        self.fake.models[LEFT], self.fake.models[RIGHT] = left, right
        self.fake.requests.clear()
        self.fake.failed.clear()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    served = Platform(tmp_path_factory.mktemp("webui-flows")).start()
    try:
        yield served
    finally:
        served.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


def open_page(browser: Any, platform: Platform, device: dict[str, Any] = DESKTOP) -> Any:
    page = browser.new_context(**device).new_page()
    page.set_default_timeout(20_000)
    page.goto(platform.url, wait_until="domcontentloaded")
    page.locator("#terms-accept").click()  # every conversation is stored: agreed first
    page.locator("#battle-input textarea").wait_for()
    return page


@pytest.fixture
def page(browser: Any, platform: Platform) -> Iterator[Any]:
    page = open_page(browser, platform)
    try:
        yield page
    finally:
        page.context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png")


# The "within 2 s" for a page that answers at once, plus the polling's own browser
# round trips (each check is several Playwright queries) on a loaded 2-core CI machine.
AT_ONCE_S = 3.0


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> float:
    """Poll `check` until it holds; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - start


def messages(page: Any, pane: str, who: str) -> list[str]:
    return [t.strip() for t in page.locator(f"#{pane} [data-testid='{who}']").all_inner_texts()]


def notice(page: Any, prefix: str = "battle") -> str:
    text: str = page.locator(f"#{prefix}-notice").inner_text()
    return text.strip()


def send(page: Any, prompt: str, prefix: str = "battle") -> None:
    page.locator(f"#{prefix}-input textarea").fill(prompt)
    page.locator(f"#{prefix}-input textarea").press("Enter")


def answered(page: Any, prefix: str = "battle", turns: int | None = None) -> None:
    """Wait until the answers are in (and, given `turns`, the pane shows that many prompts)."""
    pane = f"{prefix}-chat-a" if prefix != "chat" else "chat-chat"

    def done() -> bool:
        shown = turns is None or len(messages(page, pane, "user")) == turns
        return (
            shown
            and page.locator(f"#{prefix}-regenerate").is_enabled()
            and not page.locator(f"#{prefix}-stop").is_enabled()
        )

    wait_for("the answers", done)


def in_viewport(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]


def focused_id(page: Any) -> str:
    """The id of the element with the keyboard focus, or of the input block it sits in."""
    found: str = page.evaluate(
        "() => { const el = document.activeElement; if (!el) return '';"
        " const box = el.closest('#battle-input, #chat-input, #side-input');"
        " return box ? box.id : el.id; }"
    )
    return found


# Parity: terms first, rules and settings stated, feedback on answers --------------------------


def test_the_terms_are_accepted_before_the_first_message(browser: Any, platform: Platform) -> None:
    page = browser.new_context(**DESKTOP).new_page()
    try:
        page.goto(platform.url, wait_until="domcontentloaded")
        page.locator("#terms").get_by_text("Every conversation here is stored").wait_for()
        assert not page.locator("#battle-input textarea").is_visible()
        shot(page, "00-terms")
        page.locator("#terms-accept").click()
        page.locator("#battle-input textarea").wait_for()
        assert not page.locator("#terms").is_visible()
        rules = page.locator("#battle-rules").inner_text()
        assert "naming a model or its maker" in rules
        page.locator("#battle-sampling").get_by_text("Sampling settings").click()
        page.locator("#battle-sampling").get_by_text("temperature 0").wait_for()
        page.locator("#battle-models").get_by_text("The models in the arena").click()
        page.locator("#battle-models").get_by_text(LEFT).wait_for()
    finally:
        page.context.close()


def test_answers_can_be_reported_and_rated(page: Any, platform: Platform) -> None:
    platform.models(["One."], ["Two."])
    send(page, "Hi")
    answered(page, turns=1)
    page.locator("#battle-chat-a [data-testid='bot']").hover()
    # the flag's options show on hover; a click on "Report" is what a user does there
    report = page.locator("#battle-chat-a .extra-feedback-option", has_text="Report")
    report.first.dispatch_event("click")
    wait_for("the report", lambda: "reported" in notice(page))
    page.get_by_role("tab", name="Chat").click()
    send(page, "Hi", "chat")
    answered(page, "chat", turns=1)
    page.locator("#chat-chat [data-testid='bot']").hover()
    page.locator("#chat-chat").get_by_role("button", name="Like").first.click()
    wait_for("the thanks", lambda: "Thank you" in notice(page, "chat"))


# B2, B12: instant feedback, focus back in the box ---------------------------------------------


def test_the_prompt_shows_at_once_with_a_thinking_clock(page: Any, platform: Platform) -> None:
    platform.models({"pieces": ["Hello there."], "first_delay": 3}, ["Hi."])
    send(page, "What is a <div>?")
    took = wait_for(
        "the echo", lambda: messages(page, "battle-chat-a", "user") == ["What is a <div>?"], 2
    )
    assert took < 1.5
    assert page.locator("#battle-input textarea").input_value() == ""
    assert page.locator("#battle-input textarea").is_disabled()
    assert not page.locator("#battle-send").is_enabled()
    assert page.locator("#battle-stop").is_enabled()
    wait_for(
        "the clock",
        lambda: (
            "Thinking"
            in " ".join(messages(page, "battle-chat-a", "bot"))
            + " ".join(messages(page, "battle-chat-b", "bot"))
        ),
    )
    shot(page, "01-thinking")
    answered(page)
    assert messages(page, "battle-chat-a", "bot") + messages(page, "battle-chat-b", "bot") in (
        ["Hello there.", "Hi."],
        ["Hi.", "Hello there."],
    )
    # the keyboard user types on: focus is back in the prompt box
    wait_for("focus in the box", lambda: focused_id(page) == "battle-input", 5)


# B3: one submission per round -------------------------------------------------------------


def test_enter_then_send_is_one_round(page: Any, platform: Platform) -> None:
    platform.models({"pieces": WORDS[:20]}, {"pieces": WORDS[:20]})
    box = page.locator("#battle-input textarea")
    box.fill("Tell me about rivers. " * 50)
    box.press("Enter")
    page.evaluate("() => document.querySelector('#battle-send').click()")
    answered(page)
    time.sleep(1)
    assert len(platform.fake.requests) == 2, "Enter then Send started two battles"
    assert len(messages(page, "battle-chat-a", "user")) == 1


# B1: Stop, New round, Clear and model change during streaming -----------------------------


def test_stop_aborts_both_answers(page: Any, platform: Platform) -> None:
    platform.models({"pieces": WORDS}, {"pieces": WORDS})
    aborted = platform.fake.aborted
    send(page, "Write a long essay about bridges.")
    wait_for("streaming", lambda: "word3" in " ".join(messages(page, "battle-chat-b", "bot")))
    assert platform.fake.in_flight == 2
    page.locator("#battle-stop").click()
    wait_for("both streams closed", lambda: platform.fake.in_flight == 0, AT_ONCE_S)
    assert platform.fake.aborted == aborted + 2
    wait_for("the stopped round", lambda: "Stopped" in notice(page), AT_ONCE_S)
    for pane in ("battle-chat-a", "battle-chat-b"):
        assert "(stopped)" in messages(page, pane, "bot")[-1]
    assert page.locator("#battle-regenerate").is_enabled()
    assert page.locator("#battle-input textarea").is_enabled()
    assert not page.locator("#battle-stop").is_enabled()
    shot(page, "02-stopped")


def test_new_round_during_streaming_leaves_a_working_page(page: Any, platform: Platform) -> None:
    platform.models({"pieces": WORDS}, {"pieces": WORDS})
    send(page, "Write a long essay about bridges.")
    wait_for("streaming", lambda: "word3" in " ".join(messages(page, "battle-chat-a", "bot")))
    page.locator("#battle-new").click()

    def fresh() -> bool:
        return (
            messages(page, "battle-chat-a", "bot") == []
            and page.locator("#battle-input textarea").is_enabled()
            and page.locator("#battle-send").is_enabled()
            and "New round" in notice(page)
        )

    wait_for("a fresh round", fresh, AT_ONCE_S)
    wait_for("both streams closed", lambda: platform.fake.in_flight == 0, AT_ONCE_S)
    time.sleep(1)  # nothing from the old round lands later
    assert fresh()
    platform.models(["Short."], ["Brief."])
    send(page, "Say something short.")
    answered(page, turns=1)
    assert page.locator("#battle-vote-a").is_enabled()


def test_chat_clear_and_model_change_during_streaming(page: Any, platform: Platform) -> None:
    platform.models({"pieces": WORDS}, {"pieces": WORDS})
    page.get_by_role("tab", name="Chat").click()
    for interrupt in ("clear", "model"):
        send(page, "Write a long essay about bridges.", "chat")
        wait_for("streaming", lambda: "word3" in " ".join(messages(page, "chat-chat", "bot")))
        if interrupt == "clear":
            page.locator("#chat-clear").click()
        else:
            page.locator("#chat-model input").click()
            page.get_by_role("option", name=RIGHT).click()
        wait_for(
            f"a working chat after {interrupt}",
            lambda: (
                messages(page, "chat-chat", "bot") == []
                and page.locator("#chat-input textarea").is_enabled()
                and page.locator("#chat-send").is_enabled()
            ),
            AT_ONCE_S,
        )
        wait_for("the stream closed", lambda: platform.fake.in_flight == 0, AT_ONCE_S)
    assert page.locator(".error").count() == 0  # no red "Error" badge
    platform.models(["Fine."], ["Fine."])
    send(page, "Still there?", "chat")
    answered(page, "chat", turns=1)
    assert messages(page, "chat-chat", "bot") == ["Fine."]


# B8: failures that recover ------------------------------------------------------------------


def test_a_failed_turn_can_be_regenerated_then_voted(page: Any, platform: Platform) -> None:
    platform.models(["Fine."], {"pieces": ["Also fine."], "status": 503, "fail_times": 2})
    send(page, "Hello?")
    wait_for("the failure", lambda: "Regenerate" in notice(page))
    bots = messages(page, "battle-chat-a", "bot") + messages(page, "battle-chat-b", "bot")
    assert any("unavailable right now" in b for b in bots), bots
    assert not any("503" in b or "gateway" in b or RIGHT in b for b in bots), bots
    assert page.locator("#battle-input textarea").input_value() == "Hello?"  # kept to resend
    assert page.locator("#battle-regenerate").is_enabled()
    assert not page.locator("#battle-vote-a").is_enabled()
    shot(page, "03-failed-turn")
    page.locator("#battle-regenerate").click()  # fails once more
    wait_for("the second failure", lambda: platform.fake.failed[RIGHT] == 2)
    time.sleep(1)  # the gateway answered at once: let the page draw the whole regenerate
    answered(page)
    page.locator("#battle-input textarea").press("Enter")  # resend what is in the box
    wait_for("the vote", lambda: page.locator("#battle-vote-a").is_enabled())
    assert messages(page, "battle-chat-a", "user") == ["Hello?"]  # the failed turn was replaced
    page.locator("#battle-vote-b").click()
    wait_for("the vote saved", lambda: "Vote saved" in notice(page))


def test_a_conversation_past_the_context_is_refused_before_sending(
    page: Any, platform: Platform
) -> None:
    platform.models(
        {"pieces": ["ok"], "context_length": 100}, {"pieces": ["ok"], "context_length": 4096}
    )
    send(page, "tell me more " * 40)  # about 240 tokens by the UI's estimate
    wait_for("the refusal", lambda: "too long" in notice(page))
    assert platform.fake.requests == []
    assert page.locator("#battle-input textarea").input_value().startswith("tell me more")
    send(page, "tell me more " * 10)  # fits, but leaves less room than max_tokens (48)
    answered(page, turns=1)
    budgets = sorted(r["max_tokens"] for r in platform.fake.requests)
    assert budgets[0] < 48 and budgets[1] == 48, budgets


# B6, B15, B7: text as written, truncation, turn counter -------------------------------------


def test_text_is_shown_as_written_and_nothing_is_fetched(page: Any, platform: Platform) -> None:
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "pixel" in r.url else None)
    answer = ["The <div> and <span> tags. ", f"![x]({platform.url}/pixel.png) ", "`<b>` ok"]
    platform.models({"pieces": answer, "finish": "length"}, ["<u>plain</u>"])
    send(page, "What does the <div> tag do, and what is <span>?")
    answered(page)
    assert messages(page, "battle-chat-a", "user") == [
        "What does the <div> tag do, and what is <span>?"
    ]
    bots = messages(page, "battle-chat-a", "bot") + messages(page, "battle-chat-b", "bot")
    long_one = next(b for b in bots if "div" in b)
    assert "The <div> and <span> tags." in long_one
    assert "<b>" in long_one  # code stays code
    assert "cut off" in long_one  # it hit the token limit
    assert any("<u>plain</u>" in b for b in bots)
    time.sleep(0.5)
    assert fetched == []
    shot(page, "04-as-written")


def test_the_turn_limit_is_counted_before_it_bites(page: Any, platform: Platform) -> None:
    platform.models(["ok"], ["ok"])
    box = page.locator("#battle-input textarea")
    for turn in range(1, MAX_TURNS + 1):
        assert f"turn {turn} of {MAX_TURNS}" in (box.get_attribute("placeholder") or "")
        send(page, f"Reply with one word ({turn})")
        answered(page, turns=turn)
    assert f"limit of {MAX_TURNS} turns" in notice(page)
    assert box.is_disabled()


# B10-B12: phone, focus, live notice, voted button ------------------------------------------


def test_on_a_phone_the_vote_result_is_in_view(browser: Any, platform: Platform) -> None:
    platform.models(["Answer A."], ["Answer B."])
    page = open_page(browser, platform, PHONE)
    try:
        assert page.locator("#battle-notice").get_attribute("aria-live") == "polite"
        page.locator("#battle-send").tap()  # nothing typed: the warning shows where we look
        wait_for("the warning", lambda: "Type a message" in notice(page))
        assert in_viewport(page, "#battle-notice")
        send(page, "Hi")
        answered(page)
        page.locator("#battle-vote-a").scroll_into_view_if_needed()
        page.locator("#battle-vote-a").tap()
        wait_for("the vote saved", lambda: "Vote saved" in notice(page))
        assert "Model A was" in notice(page)
        assert in_viewport(page, "#battle-notice")
        assert "voted" in (page.locator("#battle-vote-a").get_attribute("class") or "")
        assert "voted" not in (page.locator("#battle-vote-b").get_attribute("class") or "")
        shot(page, "05-phone-voted")
    finally:
        page.context.close()


def test_keyboard_focus_follows_the_round(page: Any, platform: Platform) -> None:
    platform.models(["One."], ["Two."])
    send(page, "Hi")
    answered(page)
    wait_for("focus in the box", lambda: focused_id(page) == "battle-input", 5)
    page.locator("#battle-vote-tie").focus()
    page.keyboard.press("Enter")
    wait_for("the vote saved", lambda: "Vote saved" in notice(page))
    wait_for("focus on New round", lambda: focused_id(page) == "battle-new", 5)
    page.keyboard.press("Enter")
    wait_for("focus in the box", lambda: focused_id(page) == "battle-input", 5)
    shot(page, "06-desktop-new-round")
