"""The chat tab: one model, sampling controls, and the `WebUI` action each button runs.

Like the arena tabs, the conversation lives in a `gr.State` and every event redraws the tab
from it with `ChatView.render`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.arena import Chat, Phase, Refused
from webui.arena_tab import (
    EVENT,
    client_of,
    feedback_kind,
    focus,
    limit_notice,
    message_index,
    skip,
    turn_hint,
    warn,
)
from webui.gateway import Sampling
from webui.service import Duplicate, WebUI
from webui.settings import WebUISettings


@dataclass
class ChatView:
    state: gr.State
    model: gr.Dropdown
    notice: gr.Markdown
    chatbot: gr.Chatbot
    box: gr.Textbox
    send: gr.Button
    stop: gr.Button
    regen: gr.Button
    clear: gr.Button
    params: list[gr.Slider]  # temperature, top-p, max new tokens
    max_turns: int

    @property
    def outputs(self) -> list[Any]:
        return [self.state, self.notice, self.chatbot, self.box, self.send, self.stop, self.regen]

    def render(self, chat: Chat | None, message: str, clear_box: bool = False) -> list[Any]:
        """Updates for `outputs`. `clear_box` empties the prompt box, unless the turn failed:
        then its prompt goes back in."""
        turns = 0 if chat is None else chat.kept_turns
        box_update = gr.update(
            interactive=chat is None or chat.can_send,
            placeholder=turn_hint(turns, self.max_turns, "Type a message"),
        )
        if chat is not None and chat.phase is Phase.FAILED and clear_box:
            box_update["value"] = chat.last_prompt
        elif clear_box:
            box_update["value"] = ""
        if chat is not None and chat.phase is Phase.READY:
            ended = limit_notice(turns, self.max_turns, "press Clear to start a new one")
            message = " ".join(filter(None, [message, ended]))
        shown = chat.side.display() if chat else []
        return [
            chat,
            message,
            shown,
            box_update,
            gr.update(interactive=chat is None or chat.can_send),
            gr.update(interactive=chat is not None and chat.phase is Phase.GENERATING),
            gr.update(interactive=bool(chat and chat.can_regenerate)),
        ]


def chat_tab(ui: Callable[[], WebUI], settings: WebUISettings, blocks: gr.Blocks) -> None:
    """Build the chat tab inside the current `gr.Tab` and wire its events."""
    view = _components(settings)
    _wire(view, ui, blocks)


def _components(s: WebUISettings) -> ChatView:
    state = gr.State(None)
    model = gr.Dropdown(label="Model", elem_id="chat-model")
    chatbot = gr.Chatbot(
        label="Chat",
        elem_id="chat-chat",
        height=460,
        buttons=["copy", "copy_all"],
        feedback_options=("Like", "Dislike", "Report"),  # thumbs, and a flag to report
    )
    notice = gr.Markdown(elem_id="chat-notice", elem_classes=["notice"])
    with gr.Row():
        box = gr.Textbox(
            label="Your message",
            show_label=False,
            placeholder=turn_hint(0, s.max_turns, "Type a message"),
            elem_id="chat-input",
            scale=5,
        )
        send = gr.Button("Send", variant="primary", elem_id="chat-send", scale=1)
    with gr.Row():
        stop = gr.Button("Stop", elem_id="chat-stop", interactive=False)
        regen = gr.Button("Regenerate", elem_id="chat-regenerate")
        clear = gr.Button("Clear", elem_id="chat-clear")
    with gr.Accordion("Parameters", open=False):
        params = [
            gr.Slider(0, 2, value=s.temperature, step=0.05, label="Temperature"),
            gr.Slider(0.05, 1, value=s.top_p, step=0.05, label="Top-p"),
            gr.Slider(1, s.max_tokens_limit, value=s.max_tokens, step=1, label="Max new tokens"),
        ]
    return ChatView(
        state, model, notice, chatbot, box, send, stop, regen, clear, params, s.max_turns
    )


def _sampling(t: float, p: float, n: float) -> Sampling:
    return Sampling(temperature=float(t), top_p=float(p), max_tokens=int(n))


def _wire(view: ChatView, ui: Callable[[], WebUI], blocks: gr.Blocks) -> None:
    quiet = skip(len(view.outputs))

    async def on_send(
        prompt: str,
        chat: Chat | None,
        name: str | None,
        t: float,
        p: float,
        n: float,
        request: gr.Request,
    ) -> AsyncGenerator[list[Any], None]:
        client = client_of(request)
        try:
            run = ui().claim(client, "chat", prompt)
        except Duplicate:  # Enter then Send: one submission
            yield quiet
            return
        try:
            if not name:
                raise Refused("Pick a model first.")
            if chat is None or chat.model != name:
                chat = Chat(name, ui().limits)
            run.conversation = chat
            answer = ui().chat_send(chat, prompt, _sampling(t, p, n), client, run)
            async with contextlib.aclosing(answer) as notices:
                async for message in notices:
                    if not run.stopped:  # once stopped, whoever stopped it draws the page
                        yield view.render(chat, message, clear_box=True)
        except Refused as exc:
            yield view.render(chat, warn(exc))
        finally:
            ui().release(run)

    async def on_regenerate(
        chat: Chat | None, t: float, p: float, n: float, request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        client = client_of(request)
        try:
            run = ui().claim(client, "chat")
        except Duplicate:
            yield quiet
            return
        try:
            if chat is None:
                raise Refused("There is no answer to regenerate yet.")
            run.conversation = chat
            answer = ui().chat_regenerate(chat, _sampling(t, p, n), client, run)
            async with contextlib.aclosing(answer) as notices:
                async for message in notices:
                    if not run.stopped:
                        yield view.render(chat, message, clear_box=True)
        except Refused as exc:
            yield view.render(chat, warn(exc))
        finally:
            ui().release(run)

    async def on_stop(chat: Chat | None, request: gr.Request) -> list[Any]:
        stopped = await ui().stop(client_of(request), "chat")
        if not isinstance(stopped, Chat):
            return view.render(chat, "")
        return view.render(stopped, "Stopped: what was written so far stays.", clear_box=True)

    async def on_clear(request: gr.Request) -> list[Any]:
        await ui().stop(client_of(request), "chat")
        return view.render(None, "")

    async def on_feedback(chat: Chat | None, data: gr.LikeData, request: gr.Request) -> str:
        try:
            if chat is None:
                raise Refused("There is no answer to rate.")
            return await ui().feedback(
                chat, 0, message_index(data), feedback_kind(data), client_of(request)
            )
        except Refused as exc:
            return warn(exc)

    async def load_models() -> Any:
        served = await ui().models()
        return gr.update(choices=served, value=served[0] if served else None)

    sending = [view.box, view.state, view.model, *view.params]
    back_to_box = focus("chat-input")
    for event in (view.send.click, view.box.submit):
        event(on_send, sending, view.outputs, **EVENT).then(None, js=back_to_box)
    view.regen.click(on_regenerate, [view.state, *view.params], view.outputs, **EVENT).then(
        None, js=back_to_box
    )
    view.stop.click(on_stop, [view.state], view.outputs, **EVENT).then(None, js=back_to_box)
    for stop in (view.clear.click, view.model.change, view.chatbot.clear):
        stop(on_clear, None, view.outputs, **EVENT)
    view.chatbot.like(on_feedback, [view.state], [view.notice], **EVENT)
    blocks.load(load_models, None, [view.model], **EVENT)
