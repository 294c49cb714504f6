"""`/v1/responses` on the gateway (openai_api/responses.py, responses_stream.py), driven by the
real openai SDK against a gateway in-process, a real controller and the tiny model's worker."""

from __future__ import annotations

import contextlib
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tiny_model_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with contextlib.AsyncExitStack() as stack:
        worker = await stack.enter_async_context(loopback(worker_app(tiny_model_path)))
        ctl = controller_app(ControllerSettings(allowed_worker_hosts=["*"]))
        ctl_url = await stack.enter_async_context(loopback(ctl))
        async with httpx.AsyncClient(base_url=ctl_url) as c:
            registration = {"worker_id": "w1", "url": worker, "models": ["tiny"], "capacity": 4}
            assert (await c.post("/internal/register", json=registration)).status_code == 200
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
