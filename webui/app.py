"""The web UI app: `create_app(settings)`, a FastAPI app with the Gradio page mounted at `/`.

Wiring only: every button calls a `WebUI` method (webui.service) and turns the result into
component updates (webui.arena_tab, webui.chat_tab). The lifespan opens the `WebUI`: the
gateway client and the event store.
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
from collections.abc import Callable
from typing import Any

import gradio as gr
import openai
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import BaseRoute

from protocol.errors import ServiceUnavailable
from servekit.app import app_state, service_app, service_state
from servekit.metrics import Metrics
from store import EventLog, StoreUnavailable
from webui import report
from webui.arena_tab import EVENT, arena_tab, warn
from webui.chat_tab import chat_tab
from webui.gateway import Gateway
from webui.service import WebUI
from webui.settings import WebUISettings
from webui.state import open_state
from webui.users import UserCookies, UserIds

logger = logging.getLogger(__name__)

# The vote you cast stays marked after the buttons go grey.
CSS = """
button.voted, button.voted:disabled {
  opacity: 1 !important;
  outline: 3px solid var(--color-accent);
  outline-offset: 2px;
  font-weight: 700;
}
button.voted::before { content: "\\2713  "; }
"""

# The notices are live regions, so screen readers read errors and the reveal (marked as they
# appear: a tab's components are drawn once it is shown).
JS = """
() => {
  const mark = () => {
    for (const el of document.querySelectorAll('.notice:not([aria-live])')) {
      el.setAttribute('aria-live', 'polite');
      el.setAttribute('role', 'status');
    }
  };
  mark();
  new MutationObserver(mark).observe(document.body, {childList: true, subtree: true});
}
"""


def create_app(
    settings: WebUISettings,
    *,
    gateway: Gateway | None = None,
    events: EventLog | None = None,
    rng: random.Random | None = None,
) -> FastAPI:
    """The web UI app. Tests may pass the gateway client, the event log and the random source;
    by default the client comes from `api_url` and the log from `store_url`."""

    async def open_webui(stack: contextlib.AsyncExitStack) -> WebUI:
        return await open_state(settings, stack, gateway=gateway, events=events, rng=rng)

    routes: list[BaseRoute] = [
        APIRoute("/health", health),
        APIRoute("/ready", ready),
        APIRoute("/leaderboard.json", leaderboard_json),
    ]
    app = service_app(
        title="Corral web UI",
        routes=routes,
        metrics=Metrics("webui"),
        open_state=open_webui,
        host=settings.host,
        allowed_hosts=settings.allowed_hosts,
    )
    salt = settings.ip_hash_salt
    key = salt.get_secret_value().encode() if salt else secrets.token_bytes(32)
    app.add_middleware(UserCookies, ids=UserIds(key))

    def current() -> WebUI:
        ui = app_state(app, WebUI)
        if ui is None:
            raise RuntimeError("the web UI is not started")
        return ui

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    blocks = build_blocks(current, settings)
    return gr.mount_gradio_app(
        app, blocks, path="/", footer_links=[], run_history=False, theme=theme, css=CSS, js=JS
    )


async def health() -> dict[str, str]:
    return {"status": "ok"}


async def ready(request: Request) -> dict[str, Any]:
    """Can serve: the gateway lists models (a failure to reach it is a 503)."""
    try:
        models = await service_state(request, WebUI).gateway.models()
    except openai.OpenAIError as exc:
        raise ServiceUnavailable(
            f"the gateway is unreachable: {exc}", code="gateway_unavailable"
        ) from exc
    return {"status": "ready", "models": len(models)}


async def leaderboard_json(request: Request) -> dict[str, Any]:
    """The leaderboard as `corral leaderboard --format json` prints it (from the cache)."""
    board = await service_state(request, WebUI).leaderboard()
    return board.as_dict()


def build_blocks(ui: Callable[[], WebUI], settings: WebUISettings) -> gr.Blocks:
    """The page; its events reach the running `WebUI` through `ui()`."""
    with gr.Blocks(title="Corral arena", analytics_enabled=False) as blocks:
        gr.Markdown("# Corral: chat with models, judge them side by side")
        # The terms come first: the tabs show once they are accepted (every conversation is
        # stored, so nobody sends a message without having been told).
        with gr.Column(visible=bool(settings.terms), elem_id="terms") as terms:
            gr.Markdown(f"### Terms of use and data\n\n{settings.terms}")
            agree = gr.Button("I agree", variant="primary", elem_id="terms-accept")
        with gr.Tabs(visible=not settings.terms, elem_id="tabs") as tabs:
            with gr.Tab("Arena (battle)", id="battle"):
                arena_tab(ui, "battle", blocks, settings)
            with gr.Tab("Arena (side-by-side)", id="side"):
                arena_tab(ui, "side", blocks, settings)
            with gr.Tab("Chat", id="chat"):
                chat_tab(ui, settings, blocks)
            with gr.Tab("Leaderboard", id="leaderboard") as board_tab:
                _leaderboard_tab(ui, board_tab)
        agree.click(
            lambda: [gr.update(visible=False), gr.update(visible=True)],
            None,
            [terms, tabs],
            **EVENT,
        )
    blocks.queue(default_concurrency_limit=settings.concurrency_limit, api_open=False)
    return blocks


def _leaderboard_tab(ui: Callable[[], WebUI], tab: gr.Tab) -> None:
    summary = gr.Markdown(elem_id="leaderboard-summary")
    table = gr.Dataframe(
        headers=report.HEADERS, elem_id="leaderboard-table", interactive=False, wrap=True
    )
    plot = gr.HTML(elem_id="leaderboard-plot")
    refresh = gr.Button("Refresh", elem_id="leaderboard-refresh")
    notes = gr.Markdown(elem_id="leaderboard-notes")
    gr.Markdown(
        "Only anonymous battles count, and not those whose answers name a model or its maker "
        "(decided when the vote is cast). Rating: Bradley-Terry maximum likelihood on the Elo "
        "scale with 95 % bootstrap intervals; rank = 1 + the number of models whose interval "
        "lies entirely above. Elo: online, K=4, from 1000. A tie, or both bad, is half a win "
        "for each. The board is recomputed in the background at most once a minute. "
        "Also as JSON at `/leaderboard.json`."
    )

    async def on_refresh() -> list[Any]:
        try:
            board = await ui().leaderboard()
        except StoreUnavailable as exc:
            logger.error("leaderboard: %s", exc)
            failed = warn(Exception(f"Cannot read the votes: {exc}"))
            return [failed, gr.update(), gr.update(), gr.update()]
        return [
            report.summary(board),
            report.table_rows(board),
            report.interval_svg(board.rows),
            report.footnote(board).replace("\n", "\n\n"),
        ]

    outputs = [summary, table, plot, notes]
    refresh.click(on_refresh, None, outputs, **EVENT)
    tab.select(on_refresh, None, outputs, **EVENT)  # computed when looked at, not per visit
