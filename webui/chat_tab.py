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

from webui.arena import Chat, Refused
from webui.arena_tab import EVENT, client_of, warn
from webui.gateway import Sampling
from webui.service import WebUI
from webui.settings import WebUISettings


@dataclass
class ChatView:
    state: gr.State
    model: gr.Dropdown
    notice: gr.Markdown
    chatbot: gr.Chatbot
    box: gr.Textbox
    send: gr.Button
    regen: gr.Button
    clear: gr.Button
    params: list[gr.Slider]  # temperature, top-p, max new tokens

    @property
    def outputs(self) -> list[Any]:
        return [self.state, self.notice, self.chatbot, self.box, self.send, self.regen]

    def render(self, chat: Chat | None, message: str, clear_box: bool = False) -> list[Any]:
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


def chat_tab(ui: Callable[[], WebUI], settings: WebUISettings, blocks: gr.Blocks) -> None:
    """Build the chat tab inside the current `gr.Tab` and wire its events."""
    view = _components(settings)
    _wire(view, ui, blocks)


def _components(s: WebUISettings) -> ChatView:
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
        params = [
            gr.Slider(0, 2, value=s.temperature, step=0.05, label="Temperature"),
            gr.Slider(0.05, 1, value=s.top_p, step=0.05, label="Top-p"),
            gr.Slider(1, s.max_tokens_limit, value=s.max_tokens, step=1, label="Max new tokens"),
        ]
    return ChatView(state, model, notice, chatbot, box, send, regen, clear, params)


def _sampling(t: float, p: float, n: float) -> Sampling:
    return Sampling(temperature=float(t), top_p=float(p), max_tokens=int(n))


def _wire(view: ChatView, ui: Callable[[], WebUI], blocks: gr.Blocks) -> None:
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
                chat = Chat(name, ui().limits)
            answer = ui().chat_send(chat, prompt, _sampling(t, p, n), client_of(request))
            async with contextlib.aclosing(answer) as notices:
                async for message in notices:
                    yield view.render(chat, message, clear_box=True)
        except Refused as exc:
            yield view.render(chat, warn(exc))

    async def on_regenerate(
        chat: Chat | None, t: float, p: float, n: float, request: gr.Request
    ) -> AsyncGenerator[list[Any], None]:
        try:
            if chat is None:
                raise Refused("There is no answer to regenerate yet.")
            answer = ui().chat_regenerate(chat, _sampling(t, p, n), client_of(request))
            async with contextlib.aclosing(answer) as notices:
                async for message in notices:
                    yield view.render(chat, message)
        except Refused as exc:
            yield view.render(chat, warn(exc))

    def on_clear() -> list[Any]:
        return view.render(None, "")

    async def load_models() -> Any:
        served = await ui().models()
        return gr.update(choices=served, value=served[0] if served else None)

    sending = [view.box, view.state, view.model, *view.params]
    running: list[dict[str, Any]] = [
        view.send.click(on_send, sending, view.outputs, **EVENT),
        view.box.submit(on_send, sending, view.outputs, **EVENT),
        view.regen.click(on_regenerate, [view.state, *view.params], view.outputs, **EVENT),
    ]
    for stop in (view.clear.click, view.model.change, view.chatbot.clear):
        stop(on_clear, None, view.outputs, cancels=running, **EVENT)
    blocks.load(load_models, None, [view.model], **EVENT)
