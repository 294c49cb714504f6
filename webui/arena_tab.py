"""The two arena tabs (battle and side-by-side): their components, how a round is drawn on
them, and which `WebUI` action each button runs.

A tab keeps its `Round` in a `gr.State`; every event redraws the whole tab from it with
`ArenaView.render`, so no handler updates components one by one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.arena import VOTE_LABELS, Refused, Round, VoteKind
from webui.service import Client, WebUI
from webui.users import HEADER

USER_HEADER = HEADER.decode()

VOTE_IDS: dict[VoteKind, str] = {
    "model_a": "vote-a",
    "model_b": "vote-b",
    "tie": "vote-tie",
    "tie (bothbad)": "vote-bad",
}
# Events are private to the page (no API), and Gradio's own progress display is hidden.
EVENT: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}
SIDES = "AB"


def client_of(request: gr.Request) -> Client:
    """The server-verified user (webui.users) and the client address; never Gradio's
    client-chosen session hash."""
    host = request.client.host if request and request.client else None
    user = request.headers.get(USER_HEADER) if request else None
    return Client(session=user or f"address:{host}", ip=host)


def warn(exc: Exception) -> str:
    return f"⚠️ {exc}"


@dataclass
class ArenaView:
    """One arena tab's components; `prefix` ("battle" or "side") names their element ids."""

    prefix: str
    state: gr.State
    picks: list[gr.Dropdown]  # side-by-side only: the model of each side
    notice: gr.Markdown
    chats: list[gr.Chatbot]
    votes: dict[VoteKind, gr.Button]
    box: gr.Textbox
    send: gr.Button
    regen: gr.Button
    new: gr.Button

    @property
    def anonymous(self) -> bool:
        return self.prefix == "battle"

    @property
    def outputs(self) -> list[Any]:
        return [
            self.state,
            self.notice,
            *self.chats,
            self.box,
            self.send,
            self.regen,
            *self.votes.values(),
        ]

    def render(self, rnd: Round | None, message: str, clear: bool = False) -> list[Any]:
        """Updates for `outputs`: the round's sides, the notice, which controls are live."""
        box_update = gr.update(interactive=rnd is None or rnd.can_send)
        if clear:
            box_update["value"] = ""
        if rnd is None:
            sides = [gr.update(value=[], label=f"Model {s}") for s in SIDES]
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
            *[gr.update(interactive=flags[2]) for _ in self.votes],
        ]


def arena_tab(ui: Callable[[], WebUI], prefix: str, blocks: gr.Blocks) -> None:
    """Build one arena tab inside the current `gr.Tab` and wire its events."""
    view = _components(prefix)
    running = _wire_turns(view, ui)
    _wire_votes(view, ui)
    _wire_rounds(view, ui, blocks, running)


def _components(prefix: str) -> ArenaView:
    state = gr.State(None)
    picks: list[gr.Dropdown] = []
    if prefix == "battle":
        gr.Markdown(
            "Two anonymous models answer each prompt. Vote for the better one: "
            "their names are revealed after your vote."
        )
    else:
        with gr.Row():
            picks = [
                gr.Dropdown(label=f"Model {s}", elem_id=f"{prefix}-pick-{s.lower()}") for s in SIDES
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
            for s in SIDES
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
    return ArenaView(prefix, state, picks, notice, chats, votes, box, send, regen, new)


async def _fresh(view: ArenaView, ui: WebUI, chosen: tuple[str | None, ...]) -> Round:
    if view.anonymous:
        return await ui.new_battle()
    return await ui.new_side_by_side(*chosen)


def _wire_turns(view: ArenaView, ui: Callable[[], WebUI]) -> list[dict[str, Any]]:
    """Send (button or Enter) and regenerate; returns their events, which a new round stops."""

    async def send_updates(
        prompt: str, rnd: Round | None, chosen: tuple[str | None, ...], request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        try:
            rnd = rnd or await _fresh(view, ui(), chosen)
            async with contextlib.aclosing(ui().send(rnd, prompt, client_of(request))) as notices:
                async for message in notices:
                    yield view.render(rnd, message, clear=True)
        except Refused as exc:
            yield view.render(rnd, warn(exc))

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

    async def on_regenerate(
        rnd: Round | None, request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        try:
            if rnd is None:
                raise Refused("There is no answer to regenerate yet.")
            async with contextlib.aclosing(ui().regenerate(rnd, client_of(request))) as notices:
                async for message in notices:
                    yield view.render(rnd, message)
        except Refused as exc:
            yield view.render(rnd, warn(exc))

    on_send = on_send_battle if view.anonymous else on_send_named
    inputs = [view.box, view.state, *view.picks]
    return [
        view.send.click(on_send, inputs, view.outputs, **EVENT),
        view.box.submit(on_send, inputs, view.outputs, **EVENT),
        view.regen.click(on_regenerate, [view.state], view.outputs, **EVENT),
    ]


def _wire_votes(view: ArenaView, ui: Callable[[], WebUI]) -> None:
    def on_vote(kind: VoteKind) -> Callable[..., Any]:
        async def vote(rnd: Round | None, request: gr.Request) -> list[Any]:
            try:
                if rnd is None:
                    raise Refused("Send a prompt first: there is nothing to vote on yet.")
                return view.render(rnd, await ui().vote(rnd, kind, client_of(request)))
            except Refused as exc:
                return view.render(rnd, warn(exc))

        return vote

    for kind, button in view.votes.items():
        button.click(on_vote(kind), [view.state], view.outputs, **EVENT)


def _wire_rounds(
    view: ArenaView, ui: Callable[[], WebUI], blocks: gr.Blocks, running: list[dict[str, Any]]
) -> None:
    """A new round (button, or another model picked) stops what streams for the old one."""

    async def on_new(*chosen: str | None) -> list[Any]:
        if view.anonymous:
            return view.render(None, "New round: two new anonymous models will answer.")
        try:
            return view.render(await _fresh(view, ui(), chosen), "New round.")
        except Refused as exc:
            return view.render(None, warn(exc))

    view.new.click(on_new, view.picks, view.outputs, cancels=running, **EVENT)
    for chat in view.chats:  # the chatbot's trash icon only clears the screen: redraw the round
        chat.clear(lambda rnd: view.render(rnd, ""), [view.state], view.outputs, **EVENT)
    if not view.picks:
        return
    for pick in view.picks:
        pick.change(on_new, view.picks, view.outputs, cancels=running, **EVENT)

    async def load_models() -> list[Any]:
        served = await ui().models()
        first = served[:2] + [None] * (2 - len(served[:2]))
        return [gr.update(choices=served, value=first[i]) for i in (0, 1)]

    blocks.load(load_models, None, view.picks, **EVENT)
