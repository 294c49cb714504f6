"""A chat-completions SSE stream, translated into the Responses API's stream of typed events.

`response.created` and `response.in_progress` open it; text comes as `response.output_item.added`
(a message), `response.content_part.added`, `response.output_text.delta`s, then
`response.output_text.done`, `response.content_part.done`, `response.output_item.done`; a tool
call as its own `function_call` item with `response.function_call_arguments.delta`s; the last
event is `response.completed` (or `response.incomplete` when `max_output_tokens` cut it) with the
whole response and its usage. A failure is an `error` event, then `response.failed`. Each event
is `event: <type>` + `data: <JSON>` with a `sequence_number`, and no `[DONE]` follows.

`ResponsesStreamResponse` wraps the gateway's relayed stream (which keeps its disconnect
handling, its release of the worker and its usage accounting) and translates what it sends.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from starlette.responses import Response as HTTPResponse

from openai_api.responses import finished, usage_of
from protocol.responses import (
    ItemStatus,
    OutputFunctionCall,
    OutputMessage,
    OutputText,
    Response,
    ResponseError,
    ResponsesRequest,
)
from protocol.stream import DONE, EventSplitter

_SEP = b"\n\n"
_DONE_EVENT = DONE[: -len(_SEP)]


class ResponsesTranslator:
    def __init__(self, req: ResponsesRequest) -> None:
        self.response = Response.opened(req)
        self._seq = 0
        self._splitter = EventSplitter()
        self._started = False
        self._ended = False
        self._message: OutputMessage | None = None
        self._message_index = 0
        self._text: list[str] = []
        self._calls: dict[int, tuple[int, OutputFunctionCall]] = {}  # chat index -> output index
        self._finish: str | None = None

    def _event(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return f"event: {kind}\ndata: ".encode() + json.dumps(payload).encode() + _SEP

    def _snapshot(self) -> dict[str, Any]:
        return self.response.model_dump(mode="json")

    def feed(self, data: bytes) -> bytes:
        """The Responses events for these chat events (whole or not)."""
        out: list[bytes] = []
        if not self._started:
            self._started = True
            out.append(self._event("response.created", response=self._snapshot()))
            out.append(self._event("response.in_progress", response=self._snapshot()))
        for event in self._splitter.feed(data).split(_SEP)[:-1]:
            if self._ended or not event.startswith(b"data: "):
                continue
            if event == _DONE_EVENT:
                out += self._complete()
                continue
            try:
                chunk = json.loads(event[6:])
            except ValueError:
                out += self._fail("worker_failed", "the worker sent an event that is not JSON")
                continue
            if isinstance(chunk, dict) and "error" in chunk:
                err = chunk["error"] if isinstance(chunk["error"], dict) else {}
                code = str(err.get("code") or err.get("type") or "worker_failed")
                out += self._fail(code, str(err.get("message") or "the request failed"))
            elif isinstance(chunk, dict):
                out += self._chunk(chunk)
        return b"".join(out)

    def close(self) -> bytes:
        """The stream ended: fail the response if the chat stream never finished."""
        if self._ended:
            return b""
        return self.feed(b"") + b"".join(self._fail("worker_failed", "the stream ended early"))

    def _chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        usage = usage_of(chunk.get("usage"))
        if usage is not None:
            self.response.usage = usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # the Responses API has one output; `n` is not offered
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self._open_message()
                self._text.append(delta["content"])
                out.append(
                    self._event(
                        "response.output_text.delta",
                        item_id=self._message_id(),
                        output_index=self._message_index,
                        content_index=0,
                        delta=delta["content"],
                        logprobs=[],
                    )
                )
            for call in delta.get("tool_calls") or []:
                out += self._call_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _message_id(self) -> str:
        assert self._message is not None
        return self._message.id

    def _open_message(self) -> list[bytes]:
        if self._message is not None:
            return []
        self._message = OutputMessage(status="in_progress")
        self._message_index = len(self.response.output)
        self.response.output.append(self._message)
        return [
            self._event(
                "response.output_item.added",
                output_index=self._message_index,
                item=self._message.model_dump(mode="json"),
            ),
            self._event(
                "response.content_part.added",
                item_id=self._message.id,
                output_index=self._message_index,
                content_index=0,
                part=OutputText(text="").model_dump(mode="json"),
            ),
        ]

    def _call_delta(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if index not in self._calls:
            item = OutputFunctionCall(
                call_id=str(call.get("id") or f"call_{index}"),
                name=str(function.get("name") or ""),
                arguments="",
                status="in_progress",
            )
            self._calls[index] = (len(self.response.output), item)
            self.response.output.append(item)
            out.append(
                self._event(
                    "response.output_item.added",
                    output_index=self._calls[index][0],
                    item=item.model_dump(mode="json"),
                )
            )
        position, item = self._calls[index]
        piece = function.get("arguments") or ""
        if piece:
            item.arguments += piece
            out.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item.id,
                    output_index=position,
                    delta=piece,
                )
            )
        return out

    def _complete(self) -> list[bytes]:
        out: list[bytes] = []
        if self._message is None and not self._calls:
            out += self._open_message()  # an empty answer is still one (empty) message
        status: ItemStatus = "incomplete" if self._finish == "length" else "completed"
        if self._message is not None:
            text = OutputText(text="".join(self._text))
            self._message.content = [text]
            self._message.status = status
            common = {"item_id": self._message.id, "output_index": self._message_index}
            out += [
                self._event(
                    "response.output_text.done",
                    **common,
                    content_index=0,
                    text=text.text,
                    logprobs=[],
                ),
                self._event(
                    "response.content_part.done",
                    **common,
                    content_index=0,
                    part=text.model_dump(mode="json"),
                ),
                self._event(
                    "response.output_item.done",
                    output_index=self._message_index,
                    item=self._message.model_dump(mode="json"),
                ),
            ]
        for position, item in self._calls.values():
            item.status = "completed"
            out += [
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item.id,
                    output_index=position,
                    arguments=item.arguments,
                ),
                self._event(
                    "response.output_item.done",
                    output_index=position,
                    item=item.model_dump(mode="json"),
                ),
            ]
        finished(self.response, self._finish)
        self._ended = True
        kind = f"response.{self.response.status}"
        return [*out, self._event(kind, response=self._snapshot())]

    def _fail(self, code: str, message: str) -> list[bytes]:
        self._ended = True
        self.response.status = "failed"
        self.response.error = ResponseError(code=code, message=message)
        return [
            self._event("error", code=code, message=message, param=None),
            self._event("response.failed", response=self._snapshot()),
        ]


class ResponsesStreamResponse(HTTPResponse):
    """Runs the relayed chat stream `inner`, translating each body it sends."""

    def __init__(self, inner: HTTPResponse, translator: ResponsesTranslator) -> None:
        super().__init__(status_code=inner.status_code, media_type="text/event-stream")
        self.inner = inner
        self.translator = translator

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def translated(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body":
                body = self.translator.feed(message.get("body", b""))
                if not message.get("more_body", False):
                    body += self.translator.close()
                elif not body:
                    return
                message = {**message, "body": body}
            await send(message)

        await self.inner(scope, receive, translated)
