"""The gateway (openai_api/): validation, routing, relay, failover, errors.

The gateway runs in-process behind httpx.ASGITransport. Its upstreams are real HTTP servers on
loopback inside the test's event loop: the real controller app, the real worker app on the tiny
model, and small fake workers that fail the ways networks and processes fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from harness import loopback, serve, sse_events, worker_app
from procs import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from controller.app import create_app as controller_app
from controller.settings import ControllerSettings
from openai_api.app import create_app as gateway_app
from openai_api.settings import GatewaySettings

pytestmark = pytest.mark.asyncio(loop_scope="module")
MSGS = [{"role": "user", "content": "hi"}]
CHAT = {"model": "tiny", "messages": MSGS, "max_tokens": 4, "temperature": 0}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def real_worker(tiny_model_path: Path) -> AsyncIterator[str]:
    async with loopback(worker_app(tiny_model_path)) as url:
        yield url


class Fake:
    """A fake worker: counts calls and answers with `handler`."""

    def __init__(self, handler: Callable[[Request], Any]) -> None:
        self.calls = 0

        async def endpoint(request: Request) -> Response:
            self.calls += 1
            await request.body()
            result: Response = await handler(request)
            return result

        self.app = Starlette(routes=[Route("/v1/{path:path}", endpoint, methods=["POST"])])


async def _overloaded(_: Request) -> Response:
    return JSONResponse(
        {
            "error": {
                "message": "busy",
                "type": "service_unavailable",
                "param": None,
                "code": "overloaded",
            }
        },
        status_code=503,
    )


async def _slow(_: Request) -> Response:
    await asyncio.sleep(5)
    return JSONResponse({})


class _TornStream:
    """ASGI app: starts an SSE reply, sends one and a half events, then the process 'dies'."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "more_body": True,
                "body": b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}'
                b'\n\ndata: {"cho',
            }
        )
        raise RuntimeError("worker crashed mid-stream")


@contextlib.asynccontextmanager
async def platform(workers: dict[str, str], **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway + a real controller with the given workers registered (id -> URL)."""
    ctl = controller_app(ControllerSettings(allowed_worker_hosts=["*"]))
    async with loopback(ctl) as ctl_url:
        async with httpx.AsyncClient(base_url=ctl_url) as c:
            for worker_id, url in workers.items():
                r = await c.post(
                    "/internal/register",
                    json={
                        "worker_id": worker_id,
                        "url": url,
                        "models": ["tiny"],
                        "capacity": 4,
                        "capabilities": ["chat", "completions", "embeddings"],
                        "context_length": 512,
                    },
                )
                assert r.status_code == 200
        gw = gateway_app(GatewaySettings(controller_urls=[ctl_url], **settings))
        async with serve(gw) as client:
            yield client


@contextlib.asynccontextmanager
async def fake(app: Any) -> AsyncIterator[str]:
    async with loopback(app) as url:
        yield url


def refused() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


async def test_chat_through_the_gateway(real_worker: str) -> None:
    async with platform({"w1": real_worker}) as client:
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 200
        assert r.headers["x-corral-worker"] == "w1"
        assert r.json()["usage"]["completion_tokens"] == 4
        models = (await client.get("/v1/models")).json()
        assert [m["id"] for m in models["data"]] == ["tiny"]
        assert models["data"][0]["max_model_len"] == 512  # as registered; as vLLM lists it


async def test_stream_is_relayed_unchanged(real_worker: str) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with platform({"w1": real_worker}) as client:
        via_gateway = sse_events((await client.post("/v1/chat/completions", json=body)).text)
    async with httpx.AsyncClient(base_url=real_worker) as direct:
        straight = sse_events((await direct.post("/v1/chat/completions", json=body)).text)
    assert via_gateway[-1] == "[DONE]"
    assert via_gateway[-2]["usage"]["completion_tokens"] == 4

    def strip(events: list[Any]) -> list[Any]:  # ids and timestamps differ per request
        return [e if e == "[DONE]" else {**e, "id": "", "created": 0} for e in events]

    assert strip(via_gateway) == strip(straight)


def _counted(metrics: str, family: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith(f"{family}{{") and "tiny" in x)
    return float(line.rsplit(" ", 1)[1])


async def test_stream_without_usage_asked_is_counted_but_shows_no_usage(real_worker: str) -> None:
    body = {**CHAT, "stream": True}
    async with platform({"w1": real_worker}) as client:
        r = await client.post("/v1/chat/completions", json=body)
        metrics = (await client.get("/metrics")).text
    assert not any(line.startswith(":") for line in r.text.splitlines())  # no private comments
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    assert all("usage" not in e for e in events[:-1])
    assert _counted(metrics, "corral_api_output_tokens_total") == 4


class _StandardServer:
    """An OpenAI-compatible server that is not Corral: a usage chunk only when asked for."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

        async def chat(request: Request) -> Response:
            body = await request.json()
            self.bodies.append(body)
            head = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "tiny"}

            async def events() -> AsyncIterator[bytes]:
                for delta in ({"role": "assistant", "content": ""}, {"content": "Hi"}, {}):
                    choice = {
                        "index": 0,
                        "delta": delta,
                        "finish_reason": None if delta else "stop",
                    }
                    yield b"data: " + json.dumps({**head, "choices": [choice]}).encode() + b"\n\n"
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
                    yield b"data: " + json.dumps({**head, "choices": [], "usage": usage}).encode()
                    yield b"\n\n"
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        self.app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


async def test_a_standard_upstream_is_asked_for_usage_and_counted() -> None:
    upstream = _StandardServer()
    async with fake(upstream.app) as url, platform({"w1": url}) as client:
        r = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        metrics = (await client.get("/metrics")).text
    assert upstream.bodies[0]["stream_options"] == {"include_usage": True}
    assert [e for e in sse_events(r.text) if e != "[DONE]" and "usage" in e] == []
    assert _counted(metrics, "corral_api_prompt_tokens_total") == 9
    assert _counted(metrics, "corral_api_output_tokens_total") == 1


async def test_completions_and_embeddings_are_routed(real_worker: str) -> None:
    async with platform({"w1": real_worker}) as client:
        r = await client.post(
            "/v1/completions", json={"model": "tiny", "prompt": "a", "max_tokens": 2}
        )
        assert r.json()["object"] == "text_completion"
        r = await client.post("/v1/embeddings", json={"model": "tiny", "input": "a"})
        assert r.json()["data"][0]["object"] == "embedding"


async def test_failover_when_a_worker_refuses_connections(real_worker: str) -> None:
    async with platform({"dead": refused(), "good": real_worker}) as client:
        for _ in range(4):
            r = await client.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200
            assert r.headers["x-corral-worker"] == "good"


async def test_failover_when_a_worker_answers_503(real_worker: str) -> None:
    busy = Fake(_overloaded)
    async with fake(busy.app) as busy_url, platform({"busy": busy_url, "good": real_worker}) as c:
        for _ in range(4):
            r = await c.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200
            assert r.headers["x-corral-worker"] == "good"
        assert busy.calls >= 1  # it was tried, and its 503 never reached the client


async def test_all_workers_failing_is_503_after_bounded_retries() -> None:
    busy = [Fake(_overloaded) for _ in range(5)]
    async with contextlib.AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(fake(f.app)) for f in busy]
        client = await stack.enter_async_context(
            platform({f"w{i}": u for i, u in enumerate(urls)}, max_retries=2)
        )
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "no_worker_available"
        assert sum(f.calls for f in busy) == 3  # the first try and two retries


@pytest.mark.parametrize("stream", [False, True])
async def test_worker_timeout_is_504(stream: bool) -> None:
    slow = Fake(_slow)
    async with fake(slow.app) as url, platform({"slow": url}, request_timeout=0.3) as client:
        r = await client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
        assert r.status_code == 504
        assert r.json()["error"]["type"] == "timeout"


async def test_stream_torn_mid_way_ends_with_error_event_and_done() -> None:
    async with fake(_TornStream()) as url, platform({"w1": url}) as client:
        r = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        assert r.status_code == 200
        events = sse_events(r.text)  # every event parses: the torn half-event was dropped
        assert events[0]["choices"][0]["delta"]["content"] == "Hel"
        assert events[1]["error"]["code"] == "worker_failed"
        assert events[-1] == "[DONE]" and len(events) == 3


async def test_non_stream_worker_failure_is_502() -> None:
    async with fake(_TornStream()) as url, platform({"w1": url}) as client:
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 502
        assert r.json()["error"]["type"] == "upstream_error"


async def test_worker_errors_are_relayed_with_their_status(real_worker: str) -> None:
    async with platform({"w1": real_worker}) as client:
        r = await client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 100000})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "context_length_exceeded"


BAD: list[tuple[str, dict[str, Any], int, str | None]] = [
    (
        "malformed JSON",
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        400,
        None,
    ),
    (
        "not JSON at all",
        {"content": b"hello", "headers": {"Content-Type": "text/plain"}},
        415,
        None,
    ),
    ("missing messages", {"json": {"model": "tiny"}}, 400, "messages"),
    ("empty messages", {"json": {"model": "tiny", "messages": []}}, 400, "messages"),
    (
        "bad role",
        {"json": {"model": "tiny", "messages": [{"role": "x", "content": ""}]}},
        400,
        "messages[0].role",
    ),
    ("temperature", {"json": {**CHAT, "temperature": 9}}, 400, "temperature"),
    ("n", {"json": {**CHAT, "n": 0}}, 400, "n"),
    ("stream type", {"json": {**CHAT, "stream": "yes"}}, 400, "stream"),
    ("body is a list", {"json": [1, 2]}, 400, None),
    ("unknown model", {"json": {**CHAT, "model": "nope"}}, 404, "model"),
    ("unknown field", {"json": {**CHAT, "temprature": 0}}, 400, "temprature"),
    ("unsupported field", {"json": {**CHAT, "audio": {"voice": "x"}}}, 400, "audio"),
    (
        "invalid schema",
        {
            "json": {
                **CHAT,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "frog"}},
                },
            }
        },
        400,
        "response_format",
    ),
]


@pytest.mark.parametrize(("case", "request_kw", "status", "param"), BAD, ids=[b[0] for b in BAD])
async def test_bad_input_gets_the_right_status_and_envelope(
    case: str,
    request_kw: dict[str, Any],
    status: int,
    param: str | None,
) -> None:
    spy = Fake(_overloaded)
    async with fake(spy.app) as url, platform({"w1": url}) as client:
        r = await client.post("/v1/chat/completions", **request_kw)
        assert r.status_code == status, r.text
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert err["param"] == param
        assert spy.calls == 0  # rejected before any worker was bothered


async def test_known_model_without_live_worker_is_503() -> None:
    ctl = controller_app(ControllerSettings(allowed_worker_hosts=["*"]))
    async with loopback(ctl) as ctl_url:
        async with httpx.AsyncClient(base_url=ctl_url) as c:
            await c.post(
                "/internal/register",
                json={"worker_id": "w", "url": "http://w:80", "models": ["tiny"], "capacity": 1},
            )
            await c.post("/internal/deregister", json={"worker_id": "w"})
        async with serve(gateway_app(GatewaySettings(controller_urls=[ctl_url]))) as client:
            r = await client.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "no_worker_available"


async def test_controller_down_is_503() -> None:
    async with serve(gateway_app(GatewaySettings(controller_urls=[refused()]))) as client:
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "controller_unavailable"


async def test_second_controller_takes_over(real_worker: str) -> None:
    ctl = controller_app(ControllerSettings(allowed_worker_hosts=["*"]))
    async with loopback(ctl) as ctl_url:
        async with httpx.AsyncClient(base_url=ctl_url) as c:
            await c.post(
                "/internal/register",
                json={"worker_id": "w1", "url": real_worker, "models": ["tiny"], "capacity": 1},
            )
        gw = gateway_app(GatewaySettings(controller_urls=[refused(), ctl_url]))
        async with serve(gw) as client:
            for _ in range(3):
                assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_releases_reach_the_controller(real_worker: str) -> None:
    ctl = controller_app(ControllerSettings(allowed_worker_hosts=["*"]))
    async with loopback(ctl) as ctl_url, httpx.AsyncClient(base_url=ctl_url) as c:
        await c.post(
            "/internal/register",
            json={"worker_id": "w1", "url": real_worker, "models": ["tiny"], "capacity": 4},
        )
        async with serve(gateway_app(GatewaySettings(controller_urls=[ctl_url]))) as client:
            replies = await asyncio.gather(
                *(client.post("/v1/chat/completions", json=CHAT) for _ in range(3))
            )
            assert all(r.status_code == 200 for r in replies)
            for _ in range(100):  # ends are batched: they arrive within the flush interval
                (w,) = (await c.get("/internal/workers")).json()
                if w["in_flight"] == 0:
                    break
                await asyncio.sleep(0.02)
            assert w["in_flight"] == 0 and w["dispatched_total"] == 3


async def test_unknown_route_and_method_get_envelopes() -> None:
    async with platform({}) as client:
        r = await client.get("/v1/nothing")
        assert r.status_code == 404 and "error" in r.json()
        r = await client.get("/v1/chat/completions")
        assert r.status_code == 405 and "error" in r.json()
        r = await client.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
        assert r.status_code == 404  # never registered: unknown


async def test_api_keys_when_configured(real_worker: str) -> None:
    async with platform({"w1": real_worker}, api_keys=["k1"]) as client:
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        r = await client.post(
            "/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer wrong"}
        )
        assert r.status_code == 401
        r = await client.post(
            "/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer k1"}
        )
        assert r.status_code == 200


async def test_openapi_documents_the_request_bodies() -> None:
    async with platform({}) as client:
        spec = (await client.get("/openapi.json")).json()
        body = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[-1] in spec["components"]["schemas"]
        assert "ChatMessage" in spec["components"]["schemas"]
