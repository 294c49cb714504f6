"""The two arena tabs (battle and side-by-side): their components, how a round is drawn on
them, and which `WebUI` action each button runs.

A tab keeps its `Round` in a `gr.State`; every event redraws the whole tab from it with
`ArenaView.render`, so no handler updates components one by one.

A send draws the prompt at once (echoed, box cleared, controls off, a "Thinking..." clock),
before any token. Stop, New round and a model change stop the running generation and wait for
it to end before they draw, so its last update can never land on top of theirs (no Gradio
`cancels`: a cancelled generator's late update froze the page). After a send or a vote, focus
goes back where the keyboard user continues.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.arena import VOTE_LABELS, Phase, Refused, Round, VoteKind
from webui.service import Client, Duplicate, WebUI
from webui.settings import WebUISettings
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


def focus(elem_id: str) -> str:
    """Client-side: put the keyboard focus on the element (or the textarea inside it), once
    the page has drawn the update that enables it (tried for a second)."""
    return (
        "() => { let tries = 0; const go = () => { "
        f"const el = document.querySelector('#{elem_id} textarea, button#{elem_id}'); "
        "if (el && !el.disabled) { el.focus(); if (document.activeElement === el) return; } "
        "if (tries++ < 20) setTimeout(go, 50); }; go(); }"
    )


def skip(count: int) -> list[Any]:
    """Updates that change nothing (a dropped duplicate submission)."""
    return [gr.skip() for _ in range(count)]


def turn_hint(turns: int, max_turns: int, send_word: str) -> str:
    """The prompt box's placeholder: the turn counter, before the limit bites."""
    if turns >= max_turns:
        return f"Turn limit reached ({max_turns} of {max_turns})"
    return f"{send_word} (turn {turns + 1} of {max_turns})"


def limit_notice(turns: int, max_turns: int, what: str) -> str:
    if turns >= max_turns:
        return f"This conversation reached its limit of {max_turns} turns: {what}."
    return ""


def client_of(request: gr.Request) -> Client:
    """The page's session, the server-verified user (webui.users) and the client address."""
    host = request.client.host if request and request.client else None
    user = request.headers.get(USER_HEADER) if request else None
    page = str(getattr(request, "session_hash", None) or "")  # only keys this page's runs
    return Client(session=page or "anonymous", ip=host, user=user, page=page)


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
    stop: gr.Button
    regen: gr.Button
    new: gr.Button
    max_turns: int
    model_list: gr.Markdown | None = None

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
            self.stop,
            self.regen,
            self.new,
            *self.votes.values(),
        ]

    def render(self, rnd: Round | None, message: str, clear: bool = False) -> list[Any]:
        """Updates for `outputs`: the round's sides, the notice, which controls are live.
        `clear` empties the prompt box, unless the turn failed: then its prompt goes back."""
        turns = 0 if rnd is None else rnd.kept_turns
        hint = turn_hint(turns, self.max_turns, "Type a prompt and press Enter")
        if rnd is not None and rnd.phase is Phase.VOTED:
            hint = "You voted: start a new round to play again"
        box_update = gr.update(interactive=rnd is None or rnd.can_send, placeholder=hint)
        if rnd is not None and rnd.phase is Phase.FAILED and clear:
            box_update["value"] = rnd.last_prompt
        elif clear:
            box_update["value"] = ""
        if rnd is None:
            sides = [gr.update(value=[], label=f"Model {s}") for s in SIDES]
            flags = (True, False, False)
        else:
            sides = [gr.update(value=rnd.sides[i].display(), label=rnd.label(i)) for i in (0, 1)]
            flags = (rnd.can_send, rnd.can_regenerate, rnd.can_vote)
            if rnd.phase is Phase.READY:
                ended = limit_notice(turns, self.max_turns, "vote, then start a new round")
                message = " ".join(filter(None, [message, ended]))
        generating = rnd is not None and rnd.phase is Phase.GENERATING
        voted = rnd is not None and rnd.phase is Phase.VOTED
        return [
            rnd,
            message,
            *sides,
            box_update,
            gr.update(interactive=flags[0]),
            gr.update(interactive=generating),
            gr.update(interactive=flags[1]),
            gr.update(variant="primary" if voted else "secondary"),  # the next step
            *[
                gr.update(
                    interactive=flags[2],
                    elem_classes=["voted"] if rnd is not None and rnd.vote == kind else [],
                )
                for kind in self.votes
            ],
        ]


BATTLE_RULES = (
    "Two anonymous models answer each prompt. Vote for the better one: their names are "
    "revealed after your vote. A vote counts on the leaderboard only if the answers do not "
    "give away who wrote them (by naming a model or its maker); a company named in your own "
    "prompt is fine. When a vote will not count, the message after your vote says why."
)
SIDE_RULES = (
    "Pick two models and compare them. Votes here are stored but do not count on the "
    "leaderboard: only anonymous battles do."
)


def sampling_note(s: WebUISettings) -> str:
    return (
        f"Both models answer with temperature {s.temperature:g}, top-p {s.top_p:g} and at most "
        f"{s.max_tokens} new tokens per answer (fewer when the conversation fills the "
        f"model's context); up to {s.max_turns} turns and {s.max_input_chars} characters per "
        "message."
    )


def arena_tab(
    ui: Callable[[], WebUI], prefix: str, blocks: gr.Blocks, settings: WebUISettings
) -> None:
    """Build one arena tab inside the current `gr.Tab` and wire its events."""
    view = _components(prefix, settings)
    _wire_turns(view, ui)
    _wire_votes(view, ui)
    _wire_rounds(view, ui, blocks)
    _wire_reports(view, ui)
    if view.model_list is not None:

        async def list_models() -> str:
            return await ui().model_list()

        blocks.load(list_models, None, [view.model_list], **EVENT)


def _components(prefix: str, settings: WebUISettings) -> ArenaView:
    state = gr.State(None)
    picks: list[gr.Dropdown] = []
    if prefix == "battle":
        gr.Markdown(BATTLE_RULES, elem_id=f"{prefix}-rules")
    else:
        gr.Markdown(SIDE_RULES, elem_id=f"{prefix}-rules")
        with gr.Row():
            picks = [
                gr.Dropdown(label=f"Model {s}", elem_id=f"{prefix}-pick-{s.lower()}") for s in SIDES
            ]
    with gr.Row():
        chats = [
            gr.Chatbot(
                label=f"Model {s}",
                elem_id=f"{prefix}-chat-{s.lower()}",
                height=420,
                buttons=["copy", "copy_all"],
                feedback_options=("Report",),  # a flag under each answer
            )
            for s in SIDES
        ]
    # Next to the vote bar, where the user looks after a vote (on a phone too); read out.
    notice = gr.Markdown(elem_id=f"{prefix}-notice", elem_classes=["notice"])
    with gr.Row():
        votes = {
            kind: gr.Button(label, elem_id=f"{prefix}-{VOTE_IDS[kind]}", interactive=False)
            for kind, label in VOTE_LABELS.items()
        }
    with gr.Row():
        box = gr.Textbox(
            label="Your prompt",
            show_label=False,
            placeholder=turn_hint(0, settings.max_turns, "Type a prompt and press Enter"),
            elem_id=f"{prefix}-input",
            scale=5,
        )
        send = gr.Button("Send", variant="primary", elem_id=f"{prefix}-send", scale=1)
    with gr.Row():
        stop = gr.Button("Stop", elem_id=f"{prefix}-stop", interactive=False)
        regen = gr.Button("Regenerate", elem_id=f"{prefix}-regenerate", interactive=False)
        new = gr.Button("New round", elem_id=f"{prefix}-new")
    with gr.Accordion("Sampling settings", open=False, elem_id=f"{prefix}-sampling"):
        gr.Markdown(sampling_note(settings))
    model_list = None
    if prefix == "battle":  # which models may answer, and what they are
        with gr.Accordion("The models in the arena", open=False, elem_id=f"{prefix}-models"):
            model_list = gr.Markdown()
    return ArenaView(
        prefix,
        state,
        picks,
        notice,
        chats,
        votes,
        box,
        send,
        stop,
        regen,
        new,
        settings.max_turns,
        model_list,
    )


async def _fresh(view: ArenaView, ui: WebUI, chosen: tuple[str | None, ...]) -> Round:
    if view.anonymous:
        return await ui.new_battle()
    return await ui.new_side_by_side(*chosen)


def _wire_turns(view: ArenaView, ui: Callable[[], WebUI]) -> None:
    """Send (button or Enter), regenerate and stop."""
    quiet = skip(len(view.outputs))

    async def send_updates(
        prompt: str, rnd: Round | None, chosen: tuple[str | None, ...], request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        client = client_of(request)
        try:
            run = ui().claim(client, view.prefix, prompt)
        except Duplicate:  # Enter then Send: one submission
            yield quiet
            return
        try:
            rnd = rnd or await _fresh(view, ui(), chosen)
            run.conversation = rnd
            async with contextlib.aclosing(ui().send(rnd, prompt, client, run)) as notices:
                async for message in notices:
                    if not run.stopped:  # once stopped, whoever stopped it draws the page
                        yield view.render(rnd, message, clear=True)
        except Refused as exc:
            yield view.render(rnd, warn(exc))
        finally:
            ui().release(run)

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
        client = client_of(request)
        try:
            run = ui().claim(client, view.prefix)
        except Duplicate:
            yield quiet
            return
        try:
            if rnd is None:
                raise Refused("There is no answer to regenerate yet.")
            run.conversation = rnd
            async with contextlib.aclosing(ui().regenerate(rnd, client, run)) as notices:
                async for message in notices:
                    if not run.stopped:
                        yield view.render(rnd, message, clear=True)
        except Refused as exc:
            yield view.render(rnd, warn(exc))
        finally:
            ui().release(run)

    async def on_stop(rnd: Round | None, request: gr.Request) -> list[Any]:
        stopped = await ui().stop(client_of(request), view.prefix)
        if not isinstance(stopped, Round):
            return view.render(rnd, "")
        return view.render(stopped, "Stopped: what was written so far stays.", clear=True)

    on_send = on_send_battle if view.anonymous else on_send_named
    inputs = [view.box, view.state, *view.picks]
    back_to_box = focus(f"{view.prefix}-input")
    for event in (view.send.click, view.box.submit):
        event(on_send, inputs, view.outputs, **EVENT).then(None, js=back_to_box)
    view.regen.click(on_regenerate, [view.state], view.outputs, **EVENT).then(None, js=back_to_box)
    view.stop.click(on_stop, [view.state], view.outputs, **EVENT).then(None, js=back_to_box)


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

    # after a vote the round is over: the keyboard goes on to New round
    for kind, button in view.votes.items():
        button.click(on_vote(kind), [view.state], view.outputs, **EVENT).then(
            None, js=focus(f"{view.prefix}-new")
        )


def _wire_rounds(view: ArenaView, ui: Callable[[], WebUI], blocks: gr.Blocks) -> None:
    """A new round (button, or another model picked) stops what streams for the old one."""

    async def fresh(request: gr.Request, chosen: tuple[str | None, ...]) -> list[Any]:
        await ui().stop(client_of(request), view.prefix)
        if view.anonymous:
            return view.render(None, "New round: a fresh pair of anonymous models will answer.")
        try:
            return view.render(await _fresh(view, ui(), chosen), "New round.")
        except Refused as exc:
            return view.render(None, warn(exc))

    async def on_new_battle(request: gr.Request) -> list[Any]:
        return await fresh(request, ())

    async def on_new_named(a: str | None, b: str | None, request: gr.Request) -> list[Any]:
        return await fresh(request, (a, b))

    on_new = on_new_battle if view.anonymous else on_new_named
    view.new.click(on_new, view.picks, view.outputs, **EVENT).then(
        None, js=focus(f"{view.prefix}-input")
    )
    for chat in view.chats:  # a pane's trash icon starts a new round too (B14)
        chat.clear(on_new, view.picks, view.outputs, **EVENT)
    if not view.picks:
        return
    for pick in view.picks:
        pick.change(on_new, view.picks, view.outputs, **EVENT)

    async def load_models() -> list[Any]:
        served = await ui().models()
        first = served[:2] + [None] * (2 - len(served[:2]))
        return [gr.update(choices=served, value=first[i]) for i in (0, 1)]

    blocks.load(load_models, None, view.picks, **EVENT)


def feedback_kind(data: gr.LikeData) -> str:
    """Gradio's like data as a feedback kind: True/False are the thumbs, a string an option."""
    if isinstance(data.liked, str):
        return data.liked
    return "Like" if data.liked else "Dislike"


def message_index(data: gr.LikeData) -> int:
    return data.index if isinstance(data.index, int) else data.index[0]


def _wire_reports(view: ArenaView, ui: Callable[[], WebUI]) -> None:
    """The flag under an answer reports it (stored with the conversation's id)."""

    def on_report(side: int) -> Callable[..., Any]:
        async def report(rnd: Round | None, data: gr.LikeData, request: gr.Request) -> str:
            try:
                if rnd is None:
                    raise Refused("There is no answer to report.")
                return await ui().feedback(
                    rnd, side, message_index(data), feedback_kind(data), client_of(request)
                )
            except Refused as exc:
                return warn(exc)

        return report

    for i, chat in enumerate(view.chats):
        chat.like(on_report(i), [view.state], [view.notice], **EVENT)
