"""The web UI app: `create_app(settings)`, a FastAPI app with the Gradio page mounted at `/`.

Wiring only: every button calls a `WebUI` method (webui.service) and turns the result into
component updates. The lifespan opens the gateway client and the event store.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import gradio as gr
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from protocol.errors import ServiceUnavailable
from servekit.http import install_error_handlers
from servekit.metrics import Metrics, install_metrics
from store import EventLog, StoreUnavailable
from webui import report
from webui.arena import VOTE_LABELS, Chat, Refused, Round, VoteKind
from webui.gateway import Gateway, Sampling
from webui.service import Client, WebUI
from webui.settings import WebUISettings

logger = logging.getLogger(__name__)

VOTE_IDS: dict[VoteKind, str] = {
    "model_a": "vote-a",
    "model_b": "vote-b",
    "tie": "vote-tie",
    "tie (bothbad)": "vote-bad",
}
EVENT: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}


def create_app(
    settings: WebUISettings, gateway: Gateway | None = None, events: EventLog | None = None
) -> FastAPI:
    ui = WebUI(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ui.open(gateway=gateway, events=events)
        try:
            yield
        finally:
            await ui.close()

    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def ready() -> dict[str, Any]:
        """Can serve: the gateway lists models (a failure to reach it is a 503)."""
        try:
            models = await ui.gateway.models()
        except Exception as exc:
            raise ServiceUnavailable(
                f"the gateway is unreachable: {exc}", code="gateway_unavailable"
            ) from exc
        return {"status": "ready", "models": len(models)}

    routes: list[BaseRoute] = [APIRoute("/health", health), APIRoute("/ready", ready)]
    app = FastAPI(title="Corral web UI", lifespan=lifespan, routes=routes)
    install_error_handlers(app)
    install_metrics(app, Metrics("webui"), routes)
    app.state.webui = ui
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    return gr.mount_gradio_app(
        app, build_blocks(ui), path="/", footer_links=[], run_history=False, theme=theme
    )


def build_blocks(ui: WebUI) -> gr.Blocks:
    with gr.Blocks(title="Corral arena", analytics_enabled=False) as blocks:
        gr.Markdown("# Corral: chat with models, judge them side by side")
        with gr.Tab("Arena (battle)", id="battle"):
            _arena_tab(ui, "battle", blocks)
        with gr.Tab("Arena (side-by-side)", id="side"):
            _arena_tab(ui, "side", blocks)
        with gr.Tab("Chat", id="chat"):
            _chat_tab(ui, blocks)
        with gr.Tab("Leaderboard", id="leaderboard") as board_tab:
            _leaderboard_tab(ui, board_tab)
    blocks.queue(default_concurrency_limit=ui.settings.concurrency_limit, api_open=False)
    return blocks


def _client(request: gr.Request) -> Client:
    host = request.client.host if request and request.client else None
    return Client(session=str(getattr(request, "session_hash", None) or "anonymous"), ip=host)


def _warn(exc: Exception) -> str:
    return f"⚠️ {exc}"


def _arena_tab(ui: WebUI, prefix: str, blocks: gr.Blocks) -> None:
    anonymous = prefix == "battle"
    state = gr.State(None)
    if anonymous:
        gr.Markdown(
            "Two anonymous models answer each prompt. Vote for the better one: "
            "their names are revealed after your vote."
        )
        picks: list[gr.Dropdown] = []
    else:
        with gr.Row():
            picks = [
                gr.Dropdown(label=f"Model {s}", elem_id=f"{prefix}-pick-{s.lower()}") for s in "AB"
            ]
    notice = gr.Markdown(elem_id=f"{prefix}-notice")
    with gr.Row():
        chats = [
            gr.Chatbot(
                label=f"Model {s}",
                elem_id=f"{prefix}-chat-{s.lower()}",
                height=420,
                buttons=["copy", "copy_all"],
            )
            for s in "AB"
        ]
    with gr.Row():
        votes = {
            kind: gr.Button(label, elem_id=f"{prefix}-{VOTE_IDS[kind]}", interactive=False)
            for kind, label in VOTE_LABELS.items()
        }
    with gr.Row():
        box = gr.Textbox(
            show_label=False,
            placeholder="Type a prompt and press Enter",
            elem_id=f"{prefix}-input",
            scale=5,
        )
        send = gr.Button("Send", variant="primary", elem_id=f"{prefix}-send", scale=1)
    with gr.Row():
        regen = gr.Button("Regenerate", elem_id=f"{prefix}-regenerate", interactive=False)
        new = gr.Button("New round", elem_id=f"{prefix}-new")
    outputs = [state, notice, *chats, box, send, regen, *votes.values()]

    def render(rnd: Round | None, message: str, clear: bool = False) -> list[Any]:
        box_update = gr.update(interactive=rnd is None or rnd.can_send)
        if clear:
            box_update["value"] = ""
        if rnd is None:
            sides = [gr.update(value=[], label=f"Model {s}") for s in "AB"]
            flags = (True, False, False)
        else:
            sides = [gr.update(value=rnd.sides[i].display(), label=rnd.label(i)) for i in (0, 1)]
            flags = (rnd.can_send, rnd.can_regenerate, rnd.can_vote)
        return [
            rnd,
            message,
            *sides,
            box_update,
            gr.update(interactive=flags[0]),
            gr.update(interactive=flags[1]),
            *[gr.update(interactive=flags[2]) for _ in votes],
        ]

    async def fresh(*chosen: str | None) -> Round:
        if anonymous:
            return await ui.new_battle()
        return await ui.new_side_by_side(*chosen)

    async def send_updates(
        prompt: str, rnd: Round | None, chosen: tuple[str | None, ...], request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        try:
            rnd = rnd or await fresh(*chosen)
            async with contextlib.aclosing(ui.send(rnd, prompt, _client(request))) as notices:
                async for message in notices:
                    yield render(rnd, message, clear=True)
        except Refused as exc:
            yield render(rnd, _warn(exc))

    async def on_send_battle(
        prompt: str, rnd: Round | None, request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        async with contextlib.aclosing(send_updates(prompt, rnd, (), request)) as updates:
            async for update in updates:
                yield update

    async def on_send_named(
        prompt: str, rnd: Round | None, a: str | None, b: str | None, request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        async with contextlib.aclosing(send_updates(prompt, rnd, (a, b), request)) as updates:
            async for update in updates:
                yield update

    on_send = on_send_battle if anonymous else on_send_named

    async def on_regenerate(
        rnd: Round | None, request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        try:
            if rnd is None:
                raise Refused("There is no answer to regenerate yet.")
            async with contextlib.aclosing(ui.regenerate(rnd, _client(request))) as notices:
                async for message in notices:
                    yield render(rnd, message)
        except Refused as exc:
            yield render(rnd, _warn(exc))

    def on_vote(kind: VoteKind) -> Callable[..., Any]:
        async def vote(rnd: Round | None, request: gr.Request) -> list[Any]:
            try:
                if rnd is None:
                    raise Refused("Send a prompt first: there is nothing to vote on yet.")
                return render(rnd, await ui.vote(rnd, kind, _client(request)))
            except Refused as exc:
                return render(rnd, _warn(exc))

        return vote

    async def on_new(*chosen: str | None) -> list[Any]:
        if anonymous:
            return render(None, "New round: two new anonymous models will answer.")
        try:
            return render(await fresh(*chosen), "New round.")
        except Refused as exc:
            return render(None, _warn(exc))

    inputs_send = [box, state, *picks]
    running: list[dict[str, Any]] = [  # a new round stops what streams for the old one
        send.click(on_send, inputs_send, outputs, **EVENT),
        box.submit(on_send, inputs_send, outputs, **EVENT),
        regen.click(on_regenerate, [state], outputs, **EVENT),
    ]
    for kind, button in votes.items():
        button.click(on_vote(kind), [state], outputs, **EVENT)
    new.click(on_new, picks, outputs, cancels=running, **EVENT)
    for chat in chats:  # the chatbot's trash icon only clears the screen: redraw the round
        chat.clear(lambda rnd: render(rnd, ""), [state], outputs, **EVENT)
    if picks:
        for pick in picks:
            pick.change(on_new, picks, outputs, cancels=running, **EVENT)

        async def load_models() -> list[Any]:
            served = await ui.models()
            first = served[:2] + [None] * (2 - len(served[:2]))
            return [gr.update(choices=served, value=first[i]) for i in (0, 1)]

        blocks.load(load_models, None, picks, **EVENT)


def _chat_tab(ui: WebUI, blocks: gr.Blocks) -> None:
    s = ui.settings
    state = gr.State(None)
    model = gr.Dropdown(label="Model", elem_id="chat-model")
    notice = gr.Markdown(elem_id="chat-notice")
    chatbot = gr.Chatbot(
        label="Chat", elem_id="chat-chat", height=460, buttons=["copy", "copy_all"]
    )
    with gr.Row():
        box = gr.Textbox(
            show_label=False, placeholder="Type a message", elem_id="chat-input", scale=5
        )
        send = gr.Button("Send", variant="primary", elem_id="chat-send", scale=1)
    with gr.Row():
        regen = gr.Button("Regenerate", elem_id="chat-regenerate")
        clear = gr.Button("Clear", elem_id="chat-clear")
    with gr.Accordion("Parameters", open=False):
        temperature = gr.Slider(0, 2, value=s.temperature, step=0.05, label="Temperature")
        top_p = gr.Slider(0.05, 1, value=s.top_p, step=0.05, label="Top-p")
        max_tokens = gr.Slider(
            1, s.max_tokens_limit, value=s.max_tokens, step=1, label="Max new tokens"
        )
    outputs = [state, notice, chatbot, box, send, regen]

    def render(chat: Chat | None, message: str, clear_box: bool = False) -> list[Any]:
        box_update = gr.update(interactive=chat is None or chat.can_send)
        if clear_box:
            box_update["value"] = ""
        shown = chat.side.display() if chat else []
        return [
            chat,
            message,
            shown,
            box_update,
            gr.update(interactive=chat is None or chat.can_send),
            gr.update(interactive=bool(chat and chat.can_regenerate)),
        ]

    def sampling(t: float, p: float, n: float) -> Sampling:
        return Sampling(temperature=float(t), top_p=float(p), max_tokens=int(n))

    async def on_send(
        prompt: str,
        chat: Chat | None,
        name: str | None,
        t: float,
        p: float,
        n: float,
        request: gr.Request,
    ) -> AsyncGenerator[list[Any], None]:
        try:
            if not name:
                raise Refused("Pick a model first.")
            if chat is None or chat.model != name:
                chat = Chat(name, ui.limits)
            answer = ui.chat_send(chat, prompt, sampling(t, p, n), _client(request))
            async with contextlib.aclosing(answer) as notices:
                async for message in notices:
                    yield render(chat, message, clear_box=True)
        except Refused as exc:
            yield render(chat, _warn(exc))

    async def on_regenerate(
        chat: Chat | None, t: float, p: float, n: float, request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        try:
            if chat is None:
                raise Refused("There is no answer to regenerate yet.")
            answer = ui.chat_regenerate(chat, sampling(t, p, n), _client(request))
            async with contextlib.aclosing(answer) as notices:
                async for message in notices:
                    yield render(chat, message)
        except Refused as exc:
            yield render(chat, _warn(exc))

    def on_clear() -> list[Any]:
        return render(None, "")

    params = [temperature, top_p, max_tokens]
    running: list[dict[str, Any]] = [
        send.click(on_send, [box, state, model, *params], outputs, **EVENT),
        box.submit(on_send, [box, state, model, *params], outputs, **EVENT),
        regen.click(on_regenerate, [state, *params], outputs, **EVENT),
    ]
    clear.click(on_clear, None, outputs, cancels=running, **EVENT)
    model.change(on_clear, None, outputs, cancels=running, **EVENT)
    chatbot.clear(on_clear, None, outputs, cancels=running, **EVENT)

    async def load_models() -> Any:
        served = await ui.models()
        return gr.update(choices=served, value=served[0] if served else None)

    blocks.load(load_models, None, [model], **EVENT)


def _leaderboard_tab(ui: WebUI, tab: gr.Tab) -> None:
    summary = gr.Markdown(elem_id="leaderboard-summary")
    table = gr.Dataframe(
        headers=report.HEADERS, elem_id="leaderboard-table", interactive=False, wrap=True
    )
    plot = gr.HTML(elem_id="leaderboard-plot")
    refresh = gr.Button("Refresh", elem_id="leaderboard-refresh")
    gr.Markdown(
        "Only anonymous battles count, and not those whose text names a model or its maker. "
        "Rating: Bradley-Terry maximum likelihood on the Elo scale (mean 1000), with 95 % "
        "bootstrap intervals; rank = 1 + the number of models whose interval lies entirely "
        "above. Elo: online, K=4, from 1000. A tie, or both bad, is half a win for each."
    )

    async def on_refresh() -> list[Any]:
        try:
            board = await ui.leaderboard()
        except StoreUnavailable as exc:
            logger.error("leaderboard: %s", exc)
            return [_warn(Exception(f"Cannot read the votes: {exc}")), gr.update(), gr.update()]
        return [report.summary(board), report.table_rows(board), report.interval_svg(board.rows)]

    outputs = [summary, table, plot]
    refresh.click(on_refresh, None, outputs, **EVENT)
    tab.select(on_refresh, None, outputs, **EVENT)  # computed when looked at, not per visit
