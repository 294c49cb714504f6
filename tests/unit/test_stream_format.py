"""The wire format: encoding chunks, the error event, and what the gateway reads back."""

from __future__ import annotations

import json

import pytest

from protocol import stream
from protocol.errors import UpstreamError
from protocol.openai import ChatLogprobs, CompletionChoice


def _data(event: bytes) -> dict[str, object]:
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    loaded: dict[str, object] = json.loads(event[6:])
    return loaded


def test_chat_chunk_leaves_unset_delta_parts_out_and_keeps_nulls_openai_sends() -> None:
    chunk = stream.ChatCompletionChunk(
        id="chatcmpl-1",
        created=7,
        model="m",
        choices=[stream.ChatChunkChoice(index=0, delta=stream.DeltaMessage(content="hi"))],
    )
    assert _data(stream.encode(chunk)) == {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"content": "hi"}, "logprobs": None, "finish_reason": None}
        ],
    }
    finish = stream.ChatChunkChoice(index=1, delta=stream.DeltaMessage(), finish_reason="stop")
    assert finish.model_dump() == {
        "index": 1,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }


def test_usage_chunk_has_no_choices_and_adds_up() -> None:
    chunk = stream.CompletionChunk(
        id="c", created=1, model="m", choices=[], usage=stream.usage(3, 4)
    )
    assert _data(stream.encode(chunk))["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
    }


def test_error_event_is_one_data_line_with_the_envelope() -> None:
    event = stream.error_event(UpstreamError("worker died"))
    assert event.count(b"\n\n") == 1
    assert _data(event)["error"]["code"] == "worker_failed"  # type: ignore[index]


def test_splitter_never_returns_a_torn_event() -> None:
    splitter = stream.EventSplitter()
    whole = b'data: {"a":1}\n\ndata: {"b":2}\n\n' + stream.DONE
    out = b"".join(splitter.feed(whole[i : i + 5]) for i in range(0, len(whole), 5))
    assert out == whole
    assert splitter.feed(b'data: {"c"') == b""
    assert splitter.pending == b'data: {"c"'


def test_splitter_refuses_an_event_that_never_ends() -> None:
    splitter = stream.EventSplitter(max_pending=64)
    with pytest.raises(stream.StreamFormatError):
        splitter.feed(b"data: " + b"x" * 100)


def _usage_event(prompt: int, completion: int) -> bytes:
    chunk = stream.ChatCompletionChunk(
        id="c", created=1, model="m", choices=[], usage=stream.usage(prompt, completion)
    )
    return stream.encode(chunk)


def test_take_usage_counts_and_drops_the_usage_chunk_unless_asked() -> None:
    token = b'data: {"choices":[{"delta":{"content":"the \\"usage\\": {} key"}}]}\n\n'
    events = token + _usage_event(5, 2) + stream.DONE
    usage, relayed = stream.take_usage(events, keep=False)
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (5, 2)
    assert relayed == token + stream.DONE
    usage, relayed = stream.take_usage(events, keep=True)
    assert usage is not None and relayed == events


def test_take_usage_leaves_text_that_mentions_usage_alone() -> None:
    token = b'data: {"choices":[{"delta":{"content":"\\"usage\\": {\\"x\\":1}"}}]}\n\n'
    assert stream.take_usage(token, keep=False) == (None, token)


def test_request_usage_sets_include_usage_and_keeps_every_other_field() -> None:
    body = b'{"model":"m","stream":true,"stream_options":{"include_usage":false},"x":[1]}'
    assert json.loads(stream.request_usage(body)) == {
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
        "x": [1],
    }


def test_completion_chunk_carries_logprobs_as_openai_shapes_them() -> None:
    choice = CompletionChoice(index=0, text="a", logprobs=None, finish_reason=None)
    chunk = stream.CompletionChunk(id="c", created=1, model="m", choices=[choice])
    assert _data(stream.encode(chunk))["choices"] == [
        {"index": 0, "text": "a", "logprobs": None, "finish_reason": None}
    ]
    assert stream.ChatChunkChoice(
        index=0, delta=stream.DeltaMessage(role="assistant", content=""), logprobs=ChatLogprobs()
    ).model_dump()["delta"] == {"role": "assistant", "content": ""}
