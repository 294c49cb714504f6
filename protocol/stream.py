"""The stream's wire format, in one place: what a streamed completion looks like on the wire.

A stream is server-sent events: `data: <chunk JSON>\\n\\n` per event, ending with
`data: [DONE]\\n\\n`, always (after an error event too). For chat that is one role chunk per
choice, content deltas, a finish chunk per choice and, when the client asked for it with
`stream_options.include_usage`, one usage chunk (`choices: []`) just before `[DONE]`. A failure
after the stream started is one event carrying the OpenAI error envelope, then `[DONE]`.

Workers encode with the models and `encode`; the gateway reads with `EventSplitter` and the
helpers at the end. It always asks the worker for the standard usage chunk (`request_usage`),
counts tokens from it, and drops it again when its own client did not ask for usage
(`take_usage`), so a standard OpenAI server behind the gateway is accounted like a worker.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from protocol.errors import CorralError
from protocol.openai import ChatLogprobs, CompletionChoice, FinishReason, OpenAIModel, Usage

DONE = b"data: [DONE]\n\n"
_SEP = b"\n\n"


def encode(chunk: BaseModel) -> bytes:
    """One SSE event carrying `chunk` as compact JSON."""
    return b"data: " + chunk.model_dump_json().encode() + _SEP


def error_event(err: CorralError) -> bytes:
    """A failure after the stream started: one event with the error envelope (then `DONE`)."""
    return b"data: " + err.to_json_bytes() + _SEP


# ------------------------------------------------------------------ chunks


def _none(value: object) -> bool:
    return value is None


class DeltaFunctionCall(OpenAIModel):
    """A piece of a function call: the name once, then pieces of the arguments' JSON text."""

    name: str | None = Field(default=None, exclude_if=_none)
    arguments: str | None = Field(default=None, exclude_if=_none)


class DeltaToolCall(OpenAIModel):
    """A piece of tool call number `index`; its first piece carries `id`, `type` and the name."""

    index: int
    id: str | None = Field(default=None, exclude_if=_none)
    type: Literal["function"] | None = Field(default=None, exclude_if=_none)
    function: DeltaFunctionCall | None = Field(default=None, exclude_if=_none)


class DeltaMessage(OpenAIModel):
    """What a chat chunk adds to its choice; unset parts are left out of the JSON."""

    role: Literal["assistant"] | None = Field(default=None, exclude_if=_none)
    content: str | None = Field(default=None, exclude_if=_none)
    tool_calls: list[DeltaToolCall] | None = Field(default=None, exclude_if=_none)


class ChatChunkChoice(OpenAIModel):
    index: int
    delta: DeltaMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(OpenAIModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = Field(default=None, exclude_if=_none)


class CompletionChunk(OpenAIModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = Field(default=None, exclude_if=_none)


def usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


# ------------------------------------------------------------------ reading (the gateway)


class StreamFormatError(ValueError):
    """The upstream sent something that is not an SSE stream of bounded events."""


class EventSplitter:
    """Cuts a byte stream into whole events, so that a relay never tears one.

    `feed` returns the complete events received so far (possibly several, possibly none) and
    keeps the partial tail; a tail longer than `max_pending` bytes is an upstream that never
    ends its event, refused with `StreamFormatError` instead of buffering without bound.
    """

    def __init__(self, max_pending: int = 1 << 20) -> None:
        self._pending = b""
        self._max_pending = max_pending

    def feed(self, data: bytes) -> bytes:
        if self._pending:
            data, self._pending = self._pending + data, b""
        if data.endswith(_SEP):
            return data
        cut = data.rfind(_SEP) + 2
        if cut > 1:
            data, self._pending = data[:cut], data[cut:]
        else:
            data, self._pending = b"", data
        if len(self._pending) > self._max_pending:
            raise StreamFormatError(f"an event longer than {self._max_pending} bytes")
        return data

    @property
    def pending(self) -> bytes:
        return self._pending


def ends_stream(events: bytes) -> bool:
    return events.endswith(DONE)


def is_role_chunk(events: bytes) -> bool:
    """A chunk that only opens choices (no token yet): not a first token for TTFT."""
    return b'"role"' in events


def take_usage(events: bytes, keep: bool) -> tuple[Usage | None, bytes]:
    """The usage reported in these events, and the events to relay (without the usage chunk
    unless `keep`). Events without usage come back as they are, at the cost of one search."""
    # A quoted key cannot appear inside a JSON string (its quotes would be escaped), so this
    # never matches generated text: token chunks pay for one search and nothing else.
    if b'"usage"' not in events:
        return None, events
    found: Usage | None = None
    kept: list[bytes] = []
    for event in events.split(_SEP)[:-1]:
        if event.startswith(b"data: {") and b'"usage"' in event:
            try:
                data = json.loads(event[6:])
                found = Usage.model_validate(data["usage"], strict=False)
            except (ValueError, KeyError, TypeError):
                pass
            else:
                if not keep and not data.get("choices"):
                    continue  # the usage-only chunk the gateway asked for on its own
        kept.append(event + _SEP)
    return found, b"".join(kept)


def request_usage(body: bytes) -> bytes:
    """A streaming request's JSON body with `stream_options.include_usage` set."""
    data = json.loads(body)
    options = data.get("stream_options") or {}
    data["stream_options"] = {**options, "include_usage": True}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
