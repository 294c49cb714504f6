"""The openai backend (model_worker/backends/openai.py, serving_upstream.py) in front of a fake
OpenAI server on loopback: renaming, usage, error mapping, timeouts, disconnects, and the
upstream key, which must never reach a client or a log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from harness import loopback, serve, sse_events
from procs import free_port

from model_worker.app import create_app
from model_worker.backends.base import BackendError
from model_worker.settings import WorkerSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")
KEY = "sk-upstream-SECRET-4242"
KEY_VAR = "CORRAL_TEST_UPSTREAM_KEY"
MSGS = [{"role": "user", "content": "Hello there"}]
TIMEOUT = 1.0


class FakeOpenAI:
    """An OpenAI server whose chat behaviour is chosen by the request's `user` field."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response, StreamingResponse
        from starlette.routing import Route

        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.stream_closed = asyncio.Event()

        def envelope(message: str, param: str | None = None) -> dict[str, Any]:
            return {"error": {"message": message, "type": "x", "param": param, "code": None}}

        def chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                "id": "chatcmpl-up",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        def usage_chunk(body: dict[str, Any]) -> bytes:
            usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
            data = {
                "id": "chatcmpl-up",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [],
                "usage": usage,
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        async def models(request: Request) -> Response:
            card = {"id": "up-model", "object": "model", "created": 0, "max_model_len": 2048}
            return JSONResponse({"object": "list", "data": [card]})

        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            auth = request.headers.get("authorization")
            self.auth.append(auth)
            mode = body.get("user") or "ok"
            leak = f"internal trace at /srv/app.py line 9; header was {auth}"
            if mode == "400":
                return JSONResponse(envelope(f"bad temperature ({auth})", "temperature"), 400)
            if mode == "422":
                return JSONResponse(envelope("field required", "messages"), 422)
            if mode in ("401", "404", "500", "503"):
                return JSONResponse(envelope(leak), int(mode))
            if mode == "429":
                return JSONResponse(envelope("slow down"), 429)
            if mode == "garbage":
                return Response(b"<html>oops</html>", 200, media_type="text/html")
            if mode == "slow":
                await asyncio.sleep(TIMEOUT * 5)
            if not body.get("stream"):
                usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
                return JSONResponse(
                    {
                        "id": "chatcmpl-up",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "Hi you"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    }
                )

            async def events() -> AsyncIterator[bytes]:
                try:
                    yield b": ping\n\n"
                    yield chunk(body, {"role": "assistant", "content": ""})
                    yield chunk(body, {"content": "Hi"})
                    if mode == "torn":
                        return
                    if mode == "stall":
                        await asyncio.sleep(TIMEOUT * 5)
                    if mode == "midstream":
                        yield b"data: " + json.dumps(envelope(leak)).encode() + b"\n\n"
                        yield b"data: [DONE]\n\n"
                        return
                    if mode == "endless":
                        while True:
                            await asyncio.sleep(0.01)
                            yield chunk(body, {"content": " more"})
                    # one event split over two writes: the splitter must not tear it
                    tail = chunk(body, {"content": " you"})
                    yield tail[:10]
                    yield tail[10:]
                    yield chunk(body, {}, "stop")
                    if (body.get("stream_options") or {}).get("include_usage"):
                        yield usage_chunk(body)
                    yield b"data: [DONE]\n\n"
                finally:
                    self.stream_closed.set()

            return StreamingResponse(events(), media_type="text/event-stream")

        self.app = Starlette(
            routes=[
                Route("/v1/models", models),
                Route("/v1/chat/completions", chat, methods=["POST"]),
            ]
        )


def settings(base_url: str, **extra: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "backend": "openai",
        "base_url": base_url,
        "upstream_model": "up-model",
        "model_name": "ext",
        "api_key_env": KEY_VAR,
        "upstream_timeout": TIMEOUT,
        "controller_urls": [],
    }
    return WorkerSettings(**{**values, **extra})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    async with loopback(fake.app) as url:
        yield fake, f"{url}/v1"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker(upstream: tuple[FakeOpenAI, str]) -> AsyncIterator[str]:
    """The external worker on loopback (a real server, so that a client can really leave)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_VAR, KEY)
        async with loopback(create_app(settings(upstream[1]))) as url:
            yield url


@pytest_asyncio.fixture(loop_scope="module")
async def client(worker: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=worker, timeout=30) as c:
        yield c


async def chat(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    body = {"model": "ext", "messages": MSGS, **body}
    return await client.post("/v1/chat/completions", json=body)


async def test_listed_under_its_own_name_with_the_upstreams_context(
    client: httpx.AsyncClient,
) -> None:
    assert [m["id"] for m in (await client.get("/v1/models")).json()["data"]] == ["ext"]
    status = (await client.get("/internal/status")).json()
    assert status["backend"] == "openai"
    assert status["template"] is None
    assert status["context_length"] == 2048  # from the upstream's model card


async def test_reply_is_renamed_both_ways_and_the_key_goes_upstream_only(
    client: httpx.AsyncClient, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake = upstream[0]
    r = await chat(client, max_tokens=5)
    assert r.status_code == 200
    assert r.json()["model"] == "ext"
    assert r.json()["choices"][0]["message"]["content"] == "Hi you"
    assert r.json()["usage"]["total_tokens"] == 9
    assert fake.requests[-1]["model"] == "up-model"
    assert fake.requests[-1]["max_tokens"] == 5
    assert fake.auth[-1] == f"Bearer {KEY}"


@pytest.mark.parametrize("include_usage", [False, True])
async def test_stream_is_relayed_whole_with_usage_only_when_asked(
    client: httpx.AsyncClient, upstream: tuple[FakeOpenAI, str], include_usage: bool
) -> None:
    body: dict[str, Any] = {"stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    r = await chat(client, **body)
    assert r.status_code == 200
    # the worker always asks the upstream for usage, to count tokens
    assert upstream[0].requests[-1]["stream_options"] == {"include_usage": True}
    events = sse_events(r.text)
    assert events.count("[DONE]") == 1 and events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["model"] == "ext" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hi you"
    usage = [c["usage"] for c in chunks if c.get("usage")]
    expected = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert usage == [expected] * include_usage
    assert ": ping" not in r.text


@pytest.mark.parametrize(
    ("mode", "status", "code", "param"),
    [
        ("400", 400, None, "temperature"),  # the client's mistake: status and param kept
        ("422", 400, None, "messages"),
        ("429", 429, "rate_limit_exceeded", None),
        ("500", 502, "worker_failed", None),  # the upstream's failure: no internals
        ("404", 502, "worker_failed", None),
        ("401", 502, "upstream_auth", None),
        ("503", 503, "upstream_unavailable", None),  # a gateway tries another worker
        ("garbage", 502, "worker_failed", None),
        ("slow", 504, "timeout", None),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_failures_become_our_envelope_without_internals_or_key(
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    status: int,
    code: str | None,
    param: str | None,
    stream: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    r = await chat(client, user=mode, stream=stream)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert err["param"] == param
    assert "/srv/app.py" not in r.text and "oops" not in r.text
    assert KEY not in r.text
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("torn", "ended the stream early"),
        ("midstream", "failed mid-stream"),
        ("stall", "did not answer in time"),
    ],
)
async def test_failures_mid_stream_are_one_error_event_then_done(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, mode: str, message: str
) -> None:
    caplog.set_level(logging.DEBUG)
    r = await chat(client, user=mode, stream=True)
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    assert message in events[-2]["error"]["message"]
    assert events[1]["choices"][0]["delta"]["content"] == "Hi"  # what came before is kept
    assert "/srv/app.py" not in r.text
    assert KEY not in r.text and KEY not in caplog.text


async def test_client_leaving_a_stream_closes_the_upstream_request(
    client: httpx.AsyncClient, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake = upstream[0]
    fake.stream_closed.clear()
    body = {"model": "ext", "messages": MSGS, "stream": True, "user": "endless"}
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if "more" in line:
                break  # leave while the upstream still streams
    await asyncio.wait_for(fake.stream_closed.wait(), 10)
    status = (await client.get("/internal/status")).json()
    while status["in_flight"]:
        await asyncio.sleep(0.05)
        status = (await client.get("/internal/status")).json()


async def test_unreachable_upstream_answers_503_for_failover(
    upstream: tuple[FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, KEY)
    port = free_port()
    app = create_app(settings(upstream[1]))
    async with serve(app) as c:
        # the upstream goes away after the worker started: point the client at a dead port
        from model_worker.state import WorkerState
        from servekit.app import app_state

        state = app_state(app, WorkerState)
        assert state is not None
        backend = state.backend
        client = backend.client  # type: ignore[attr-defined]
        client.base_url = f"http://127.0.0.1:{port}/v1"
        r = await chat(c)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "upstream_unavailable"


@pytest.mark.parametrize(
    ("extra", "env", "error"),
    [
        ({"upstream_model": "missing"}, True, "does not serve 'missing'"),
        ({}, False, f"{KEY_VAR}, but that environment variable is not set"),
        ({"base_url": "http://127.0.0.1:{dead}/v1"}, True, "not reachable"),
    ],
)
async def test_misconfiguration_fails_at_start_loudly(
    upstream: tuple[FakeOpenAI, str],
    monkeypatch: pytest.MonkeyPatch,
    extra: dict[str, Any],
    env: bool,
    error: str,
) -> None:
    if env:
        monkeypatch.setenv(KEY_VAR, KEY)
    else:
        monkeypatch.delenv(KEY_VAR, raising=False)
    extra = dict(extra)
    base_url = extra.pop("base_url", upstream[1]).format(dead=free_port())
    app = create_app(settings(base_url, **extra))
    with pytest.raises((BackendError, ValueError), match=error):
        async with serve(app):
            pass


async def test_openai_backend_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match="--base-url"):
        WorkerSettings(backend="openai", model_name="x", controller_urls=[])


async def test_flags_come_from_the_settings_and_no_flag_takes_the_key() -> None:
    import argparse

    from model_worker.cli import add_arguments
    from servekit.cliargs import settings_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--backend",
            "openai",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--upstream-model",
            "up",
            "--model-name",
            "mine",
            "--api-key-env",
            "MY_KEY",
        ]
    )
    parsed = settings_from_args(args, WorkerSettings)
    assert (parsed.base_url, parsed.upstream_model, parsed.api_key_env) == (
        "http://127.0.0.1:9/v1",
        "up",
        "MY_KEY",
    )
    # a key pasted where the variable's name belongs is refused without being printed back
    args = parser.parse_args(["--backend", "openai", "--base-url", "u", "--api-key-env", KEY])
    with pytest.raises(ValueError) as info:
        settings_from_args(args, WorkerSettings)
    assert "api_key_env" in str(info.value)
    assert KEY not in str(info.value)
