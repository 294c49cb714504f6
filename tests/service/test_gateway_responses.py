"""`/v1/responses` on the gateway (openai_api/responses.py, responses_stream.py), driven by the
real openai SDK against a gateway in-process, a real controller and the tiny model's worker."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from harness import loopback, serve, worker_app

from controller.app import create_app as controller_app
from controller.settings import ControllerSettings
from openai_api.app import create_app as gateway_app
from openai_api.responses import tools_supported
from openai_api.settings import GatewaySettings

pytestmark = pytest.mark.asyncio(loop_scope="module")


class ScriptedChat:
    """A worker for model "scripted" that always calls `get_weather` (OpenAI's shapes, streamed
    and whole) and keeps the chat bodies it got."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response, StreamingResponse
        from starlette.routing import Route

        self.bodies: list[dict[str, Any]] = []
        call = {"id": "call_7", "type": "function", "function": {"name": "get_weather"}}
        usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}

        async def chat(request: Request) -> Response:
            body = await request.json()
            self.bodies.append(body)
            args = '{"city": "Paris"}'
            if not body.get("stream"):
                whole = {**call, "function": {"name": "get_weather", "arguments": args}}
                message = {"role": "assistant", "content": None, "tool_calls": [whole]}
                return JSONResponse(
                    {
                        "id": "chatcmpl-s",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "scripted",
                        "choices": [
                            {"index": 0, "message": message, "finish_reason": "tool_calls"}
                        ],
                        "usage": usage,
                    }
                )
            head = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 0}

            def event(choices: list[Any], **extra: Any) -> bytes:
                data = {**head, "model": "scripted", "choices": choices, **extra}
                return b"data: " + json.dumps(data).encode() + b"\n\n"

            async def events() -> AsyncIterator[bytes]:
                yield event([{"index": 0, "delta": {"role": "assistant"}}])
                first = {"index": 0, **call, "function": {"name": "get_weather", "arguments": ""}}
                yield event([{"index": 0, "delta": {"tool_calls": [first]}}])
                for piece in (args[:6], args[6:]):
                    more = {"index": 0, "function": {"arguments": piece}}
                    yield event([{"index": 0, "delta": {"tool_calls": [more]}}])
                yield event([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])
                yield event([], usage=usage)
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        self.app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture(scope="module")
def scripted() -> ScriptedChat:
    return ScriptedChat()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(
    tiny_model_path: Path, scripted: ScriptedChat
) -> AsyncIterator[httpx.AsyncClient]:
    async with contextlib.AsyncExitStack() as stack:
        worker = await stack.enter_async_context(loopback(worker_app(tiny_model_path)))
        fake = await stack.enter_async_context(loopback(scripted.app))
        ctl = controller_app(ControllerSettings(allowed_worker_hosts=["*"]))
        ctl_url = await stack.enter_async_context(loopback(ctl))
        async with httpx.AsyncClient(base_url=ctl_url) as c:
            for worker_id, url, model in (("w1", worker, "tiny"), ("w2", fake, "scripted")):
                registration = {
                    "worker_id": worker_id,
                    "url": url,
                    "models": [model],
                    "capacity": 4,
                }
                r = await c.post("/internal/register", json=registration)
                assert r.status_code == 200
        gw = gateway_app(GatewaySettings(controller_urls=[ctl_url]))
        yield await stack.enter_async_context(serve(gw, base_url="http://localhost"))


@pytest.fixture
def sdk(gateway: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url="http://localhost/v1", api_key="unused", http_client=gateway, max_retries=0
    )


async def chat_text(gateway: httpx.AsyncClient, messages: list[dict[str, Any]], **body: Any) -> str:
    r = await gateway.post(
        "/v1/chat/completions", json={"model": "tiny", "messages": messages, **body}
    )
    assert r.status_code == 200, r.text
    content: str = r.json()["choices"][0]["message"]["content"]
    return content


async def test_text_in_text_out_matches_chat_with_usage(
    sdk: openai.AsyncOpenAI, gateway: httpx.AsyncClient
) -> None:
    resp = await sdk.responses.create(
        model="tiny",
        input="Hello there",
        instructions="Be brief.",
        max_output_tokens=6,
        temperature=0,
        store=False,
    )
    expected = await chat_text(
        gateway,
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        max_tokens=6,
        temperature=0,
    )
    assert resp.object == "response" and resp.id.startswith("resp")
    assert resp.output_text == expected
    assert resp.status == "incomplete"  # 6 tokens of a random model: cut by max_output_tokens
    assert resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.usage is not None and resp.usage.output_tokens == 6
    assert resp.usage.total_tokens == resp.usage.input_tokens + 6
    assert resp.instructions == "Be brief." and resp.store is False
    (item,) = resp.output
    assert item.type == "message" and item.role == "assistant"


async def test_input_items_become_the_conversation(
    sdk: openai.AsyncOpenAI, gateway: httpx.AsyncClient
) -> None:
    items: list[Any] = [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Bonjour"}],
        },
        {"role": "user", "content": "And again?"},
    ]
    resp = await sdk.responses.create(model="tiny", input=items, max_output_tokens=5, temperature=0)
    expected = await chat_text(
        gateway,
        [
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "And again?"},
        ],
        max_tokens=5,
        temperature=0,
    )
    assert resp.output_text == expected


async def test_stream_events_in_order_and_deltas_join_to_the_text(
    sdk: openai.AsyncOpenAI,
) -> None:
    stream = await sdk.responses.create(
        model="tiny", input="Hello there", max_output_tokens=5, temperature=0, stream=True
    )
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == deltas
    assert final.usage is not None and final.usage.output_tokens == 5
    whole = await sdk.responses.create(
        model="tiny", input="Hello there", max_output_tokens=5, temperature=0
    )
    assert whole.output_text == deltas


async def test_sdk_stream_helper_accumulates_our_events(sdk: openai.AsyncOpenAI) -> None:
    """The SDK's stream helper rebuilds the response from the events (and raises on any it
    cannot place). A cut response ends in `response.incomplete`, which the helper does not
    count as final, as with OpenAI's own server."""
    async with sdk.responses.stream(
        model="tiny", input="Hello", max_output_tokens=3, temperature=0
    ) as stream:
        seen = [event async for event in stream]
    text = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
    last = seen[-1]
    assert last.type == "response.incomplete"
    assert last.response.output_text == text
    assert last.response.usage is not None and last.response.usage.output_tokens == 3


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"previous_response_id": "resp_1"}, 400, "previous_response_id", "unsupported"),
        ({"store": True}, 400, "store", "unsupported"),
        (
            {"frobnicate": 1},
            400,
            "frobnicate",
            "unknown_parameter",
        ),  # unknown fields are refused, by name
        ({"temperature": 3}, 400, "temperature", None),
        ({"max_output_tokens": 0}, 400, "max_output_tokens", None),
        ({"input": []}, 400, "input", None),
        ({"text": {"format": {"type": "json_object"}}}, 400, "text.format.type", None),
        ({"tool_choice": "required"}, 400, "tool_choice", None),
        ({"model": "nope"}, 404, "model", "model_not_found"),
    ],
)
async def test_bad_requests_get_400_naming_the_field(
    gateway: httpx.AsyncClient,
    body: dict[str, Any],
    status: int,
    param: str,
    code: str | None,
) -> None:
    r = await gateway.post("/v1/responses", json={"model": "tiny", "input": "hi", **body})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param
    assert err["code"] == code


@pytest.mark.skipif(tools_supported(), reason="tool calling is served")
async def test_tools_are_refused_until_tool_calling_is_served(gateway: httpx.AsyncClient) -> None:
    tool = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}
    r = await gateway.post("/v1/responses", json={"model": "tiny", "input": "hi", "tools": [tool]})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "tools"
    assert r.json()["error"]["code"] == "unsupported"


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.mark.skipif(not tools_supported(), reason="tool calling is not served yet")
async def test_function_tools_round_trip(sdk: openai.AsyncOpenAI, scripted: ScriptedChat) -> None:
    resp = await sdk.responses.create(
        model="scripted", input="Weather in Paris?", tools=[WEATHER], tool_choice="required"
    )
    (call,) = resp.output
    assert call.type == "function_call"
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_7",
        "get_weather",
        {"city": "Paris"},
    )
    sent = scripted.bodies[-1]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {k: v for k, v in WEATHER.items() if k != "type"},
        }
    ]
    assert sent["tool_choice"] == "required"
    # the call and its result go back as input items: assistant tool_calls + a tool message
    await sdk.responses.create(
        model="scripted",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    sent = scripted.bodies[-1]
    assert sent["messages"][1]["tool_calls"][0]["id"] == "call_7"
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_7", "content": "sunny"}
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.skipif(not tools_supported(), reason="tool calling is not served yet")
async def test_streamed_function_call_events(
    sdk: openai.AsyncOpenAI, scripted: ScriptedChat
) -> None:
    stream = await sdk.responses.create(
        model="scripted", input="Weather?", tools=[WEATHER], stream=True
    )
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-1] == "response.completed"
    (item,) = events[-1].response.output  # type: ignore[union-attr]
    assert item.type == "function_call" and json.loads(item.arguments) == {"city": "Paris"}
