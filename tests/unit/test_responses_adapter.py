"""The Responses adapter's translations (openai_api/responses.py, responses_stream.py): request to
chat request, chat reply to Response, and a chat chunk stream to Responses events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_api import responses
from openai_api.responses_stream import ResponsesTranslator
from protocol.errors import InvalidRequest
from protocol.responses import ResponsesRequest


def req(**body: Any) -> ResponsesRequest:
    return ResponsesRequest.model_validate({"model": "m", "input": "hi", **body})


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    return b"data: " + json.dumps({**data, "choices": choices, **extra}).encode() + b"\n\n"


def events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            kind, data = block.split("\n")
            payload = json.loads(data.removeprefix("data: "))
            assert kind == f"event: {payload['type']}"
            out.append(payload)
    return out


def test_request_becomes_a_chat_request() -> None:
    body = responses.to_chat(
        req(
            instructions="Be brief.",
            input=[
                {"role": "user", "content": [{"type": "input_text", "text": "a"}]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "b"}]},
            ],
            max_output_tokens=7,
            temperature=0.5,
            top_p=0.9,
            stream=True,
        )
    )
    assert body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
        ],
        "stream": True,
        "max_completion_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"store": True}, "store"),
    ],
)
def test_state_is_refused_as_unsupported(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        responses.to_chat(req(**body))
    assert info.value.param == param and info.value.code == "unsupported"


def test_store_false_is_honoured() -> None:
    assert responses.to_chat(req(store=False))["messages"] == [{"role": "user", "content": "hi"}]


def test_chat_reply_becomes_a_response() -> None:
    chat = {
        "choices": [{"index": 0, "message": {"content": "Hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    resp = responses.from_chat(req(metadata={"k": "v"}), chat)
    assert resp.status == "completed" and resp.output_text() == "Hello"
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (3, 1, 4)
    assert resp.metadata == {"k": "v"}


def test_tool_calls_become_function_call_items() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    chat = {
        "choices": [
            {
                "index": 0,
                "message": {"content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ]
    }
    resp = responses.from_chat(req(), chat)
    (item,) = resp.output
    assert item.type == "function_call"
    assert (item.call_id, item.name, item.arguments) == ("call_1", "f", "{}")


def test_stream_translation_in_order_with_usage() -> None:
    t = ResponsesTranslator(req(stream=True))
    raw = t.feed(chunk({"role": "assistant", "content": ""}) + chunk({"content": "Hel"}))
    raw += t.feed(chunk({"content": "lo"}))
    # an event torn across two reads is put back together
    tail = chunk({}, "length")
    raw += t.feed(tail[:7])
    raw += t.feed(tail[7:] + chunk(None, usage={"prompt_tokens": 2, "completion_tokens": 2}))
    raw += t.feed(b"data: [DONE]\n\n") + t.close()
    got = events(raw)
    assert [e["type"] for e in got] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    assert [e["sequence_number"] for e in got] == list(range(len(got)))
    assert got[6]["text"] == "Hello"
    final = got[-1]["response"]
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["usage"]["output_tokens"] == 2
    assert final["output"][0]["content"][0]["text"] == "Hello"


def test_stream_error_event_becomes_error_then_failed() -> None:
    t = ResponsesTranslator(req(stream=True))
    err = {"error": {"message": "boom", "type": "upstream_error", "param": None, "code": "x"}}
    raw = t.feed(chunk({"content": "a"}) + b"data: " + json.dumps(err).encode() + b"\n\n")
    raw += t.feed(b"data: [DONE]\n\n") + t.close()
    kinds = [e["type"] for e in events(raw)]
    assert kinds[-2:] == ["error", "response.failed"]
    assert events(raw)[-1]["response"]["error"] == {"code": "x", "message": "boom"}


def test_stream_cut_short_fails_the_response() -> None:
    t = ResponsesTranslator(req(stream=True))
    raw = t.feed(chunk({"content": "a"})) + t.close()
    assert events(raw)[-1]["type"] == "response.failed"


def test_streamed_tool_calls_become_function_call_items() -> None:
    t = ResponsesTranslator(req(stream=True))
    first = {"index": 0, "id": "call_9", "type": "function", "function": {"name": "f"}}
    raw = t.feed(chunk({"tool_calls": [first]}))
    raw += t.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}))
    raw += t.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}))
    raw += t.feed(chunk({}, "tool_calls") + b"data: [DONE]\n\n")
    got = events(raw)
    assert [e["type"] for e in got][2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    (item,) = got[-1]["response"]["output"]
    assert item["type"] == "function_call"
    assert (item["call_id"], item["name"], item["arguments"]) == ("call_9", "f", '{"a":1}')
