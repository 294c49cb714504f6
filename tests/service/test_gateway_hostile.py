"""The gateway against hostile clients (openai_api/routes.py, auth.py, relay.py, router.py):
batches over a bound, too many streams at once, guessed keys, token limits that hold, bounded
metric labels, and control-plane errors that do not blame the client.

Each test says what a bad input gets. Slow readers and vanished clients need real sockets:
they are in tests/integration/test_hostile_clients.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import loopback
from procs import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from controller.app import create_app as controller_app
from controller.settings import ControllerSettings
from openai_api.app import create_app as gateway_app
from openai_api.auth import Gatekeeper, Principal
from openai_api.router import ControllerClient
from openai_api.settings import GatewaySettings
from store import open_keys
from store.memory_limits import MemoryRateLimiter

pytestmark = pytest.mark.asyncio(loop_scope="module")
MSGS = [{"role": "user", "content": "hi"}]
CHAT = {"model": "tiny", "messages": MSGS, "max_tokens": 4}


def _nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


@contextlib.asynccontextmanager
async def gateway(
    controller: str | None = None, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway on a real loopback socket (streams that never end need one)."""
    app = gateway_app(
        GatewaySettings(controller_urls=[controller or _nowhere()], max_retries=0, **settings)
    )
    async with loopback(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


class _Endless:
    """A fake worker whose streams send one event every 50 ms until the client leaves."""

    def __init__(self) -> None:
        self.open = 0

        async def endpoint(request: Request) -> Response:
            await request.body()

            async def events() -> AsyncIterator[bytes]:
                self.open += 1
                try:
                    while True:
                        yield b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
                        await asyncio.sleep(0.05)
                finally:
                    self.open -= 1

            return StreamingResponse(events(), media_type="text/event-stream")

        self.app = Starlette(routes=[Route("/v1/{path:path}", endpoint, methods=["POST"])])


@contextlib.asynccontextmanager
async def platform(worker_url: str) -> AsyncIterator[str]:
    """A real controller with one worker for "tiny" registered."""
    ctl = controller_app(ControllerSettings(allowed_worker_hosts=["*"]))
    async with loopback(ctl) as url, httpx.AsyncClient(base_url=url) as c:
        r = await c.post(
            "/internal/register",
            json={
                "worker_id": "w1",
                "url": worker_url,
                "models": ["tiny"],
                "capacity": 64,
                "capabilities": ["chat", "completions", "embeddings"],
            },
        )
        assert r.status_code == 200
        yield url


LIMITS = {"max_prompts": 4, "max_choices": 8, "max_embedding_inputs": 3, "max_input_chars": 100}
OVER = [
    ("/v1/completions", {"model": "tiny", "prompt": ["a"] * 5}, "prompt"),
    ("/v1/completions", {"model": "tiny", "prompt": [[1]] * 5}, "prompt"),
    ("/v1/completions", {"model": "tiny", "prompt": ["a"] * 3, "n": 3}, "n"),
    ("/v1/completions", {"model": "tiny", "prompt": "x" * 101}, "prompt"),
    ("/v1/completions", {"model": "tiny", "prompt": "a", "min_tokens": 17}, "min_tokens"),
    (
        "/v1/chat/completions",
        {**CHAT, "messages": [{"role": "user", "content": "x" * 101}]},
        "messages",
    ),
    ("/v1/chat/completions", {**CHAT, "min_tokens": 5}, "min_tokens"),
    ("/v1/chat/completions", {**CHAT, "stop": ["x" * 257]}, "stop"),
    ("/v1/embeddings", {"model": "tiny", "input": ["a"] * 4}, "input"),
    ("/v1/embeddings", {"model": "tiny", "input": "x" * 101}, "input"),
]
AT = [
    ("/v1/completions", {"model": "tiny", "prompt": ["a"] * 4, "n": 2}),
    ("/v1/completions", {"model": "tiny", "prompt": "x" * 100, "min_tokens": 16}),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "x" * 100}]}),
    ("/v1/chat/completions", {**CHAT, "min_tokens": 4, "stop": ["x" * 256]}),
    ("/v1/embeddings", {"model": "tiny", "input": ["a"] * 3}),
]


@pytest.mark.parametrize(("path", "body", "param"), OVER)
async def test_a_request_over_a_bound_is_400_before_any_dispatch(
    path: str, body: dict[str, Any], param: str
) -> None:
    async with gateway(**LIMITS) as gw:  # no controller: a dispatch would be a 503
        r = await gw.post(path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


@pytest.mark.parametrize(("path", "body"), AT)
async def test_a_request_at_a_bound_is_dispatched(path: str, body: dict[str, Any]) -> None:
    async with gateway(**LIMITS) as gw:
        r = await gw.post(path, json=body)
    assert r.status_code == 503  # it got as far as asking for a worker
    assert r.json()["error"]["code"] == "controller_unavailable"


async def test_a_client_over_its_stream_cap_gets_429_until_one_ends() -> None:
    worker = _Endless()
    async with (
        loopback(worker.app) as worker_url,
        platform(worker_url) as ctl,
        gateway(ctl, max_streams_per_key=2) as gw,
        contextlib.AsyncExitStack() as streams,
    ):
        body = {**CHAT, "stream": True}
        opened = [
            await streams.enter_async_context(gw.stream("POST", "/v1/chat/completions", json=body))
            for _ in range(2)
        ]
        assert [r.status_code for r in opened] == [200, 200]
        r = await gw.post("/v1/chat/completions", json=body)
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["type"] == "rate_limit_error" and "concurrent streams" in error["message"]
        assert "Retry-After" in r.headers
        await opened[0].aclose()
        for _ in range(100):  # the gateway sees the close within a moment
            async with gw.stream("POST", "/v1/chat/completions", json=body) as again:
                if again.status_code == 200:
                    break
            await asyncio.sleep(0.05)
        assert again.status_code == 200


async def test_guessed_keys_from_one_address_get_429_after_the_allowance(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    keys = open_keys(url)
    try:
        good, _ = await keys.create("good", None, None, None)
    finally:
        await keys.close()
    async with gateway(
        store_url=url, require_keys=True, failed_auth_per_minute=3, key_cache_ttl=60
    ) as gw:
        assert (
            await gw.post("/v1/chat/completions", json=CHAT, headers=_bearer(good))
        ).status_code == 503
        statuses = [
            (
                await gw.post("/v1/chat/completions", json=CHAT, headers=_bearer(f"sk-{i}"))
            ).status_code
            for i in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429]
        # a key the gateway already knows still works from that address
        r = await gw.post("/v1/chat/completions", json=CHAT, headers=_bearer(good))
        assert r.status_code == 503


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _gatekeeper(tmp_path: Path, limiter: MemoryRateLimiter) -> Gatekeeper:
    return Gatekeeper(True, [], open_keys(f"sqlite:///{tmp_path / 'k.db'}"), limiter, cache_ttl=0)


async def test_tokens_are_reserved_at_admission(tmp_path: Path) -> None:
    """Concurrent requests cannot all pass a check that reserves nothing: the first one's
    reservation puts the bucket in debt before its reply comes back."""
    keeper = await _gatekeeper(tmp_path, MemoryRateLimiter())
    key = Principal("k", tpm=100)
    await keeper.admit(key, "tiny", reserve=500)
    with pytest.raises(Exception) as caught:
        await keeper.admit(key, "tiny", reserve=500)
    assert getattr(caught.value, "status_code", None) == 429


async def test_a_refund_gives_back_what_was_not_used(tmp_path: Path) -> None:
    limiter = MemoryRateLimiter(clock=lambda: 0.0)
    keeper = await _gatekeeper(tmp_path, limiter)
    key = Principal("k", tpm=100)
    await keeper.admit(key, "tiny", reserve=500)
    keeper.charge(key, 30 - 500)  # used 30 of 500
    await keeper.drain()
    assert limiter._buckets["k:tpm"][0] == pytest.approx(70)
    await keeper.admit(key, "tiny", reserve=10)


async def test_a_stream_cut_short_is_charged_what_it_relayed(tmp_path: Path) -> None:
    """A client that closes a stream early pays for the events it got (and its prompt), not
    nothing (it used to be charged only from the usage chunk at the very end)."""
    worker = _Endless()
    limiter = MemoryRateLimiter(clock=lambda: 0.0)  # no refill: the level is what was charged
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    keys = open_keys(url)
    secret, record = await keys.create("metered", None, None, 10_000)
    async with loopback(worker.app) as worker_url, platform(worker_url) as ctl:
        settings = GatewaySettings(
            controller_urls=[ctl], store_url=url, require_keys=True, key_cache_ttl=0
        )
        app = gateway_app(settings, keys=keys, limiter=limiter)
        async with loopback(app) as gw_url, httpx.AsyncClient(base_url=gw_url, timeout=10) as gw:
            body = {**CHAT, "stream": True, "max_tokens": 1000}
            async with gw.stream(
                "POST", "/v1/chat/completions", json=body, headers=_bearer(secret)
            ) as r:
                seen = 0
                async for line in r.aiter_lines():
                    seen += line.startswith("data: {")
                    if seen == 5:
                        break
            for _ in range(100):  # the worker saw the close; the charge lands just after
                if worker.open == 0:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
    await keys.close()
    charged = 10_000 - limiter._buckets[f"{record.id}:tpm"][0]
    assert 5 <= charged < 100, charged  # the events relayed plus the prompt, not 1000


async def test_unknown_model_names_add_no_metric_series() -> None:
    async with gateway() as gw:
        for _ in range(50):
            await gw.post("/v1/chat/completions", json={**CHAT, "model": uuid.uuid4().hex})
        text = (await gw.get("/metrics")).text
    assert text.count("corral_api_requests_total{") == 1  # one series: model="", 503
    assert 'model=""' in text


async def test_a_controller_refusing_the_gateway_is_503_not_a_bad_key() -> None:
    ctl = controller_app(ControllerSettings(control_secret="right"))
    async with loopback(ctl) as url:
        async with gateway(url, control_secret="wrong") as gw:
            r = await gw.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "controller_unavailable"
    assert "127.0.0.1" not in error["message"]


async def test_an_unreachable_controller_is_named_nowhere_in_the_error() -> None:
    async with gateway() as gw:
        r = await gw.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503
    assert "127.0.0.1" not in r.text and "Connect" not in r.text


async def test_more_than_10k_queued_releases_go_out_in_batches() -> None:
    ctl = controller_app(ControllerSettings())
    async with loopback(ctl) as url:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            client = ControllerClient(session, [url], None, flush_interval=3600)
            for i in range(25_000):
                client.release(f"gone-{i}")
            await client.flush()  # used to raise a ValidationError (a 500 to some client)
            assert client._ended == []
            for i in range(25_000):
                client.release(f"gone-{i}")
            with pytest.raises(Exception) as caught:  # no such model; but the call was made
                await client.dispatch("tiny", "chat", [])
            assert getattr(caught.value, "status_code", None) in (404, 503)
            await client.close()


async def test_a_redis_bucket_in_debt_outlives_the_idle_ttl(redis_url: str) -> None:
    """A bucket 1000 tokens in debt at 100 a minute needs 11 minutes to be full again: it must
    not expire after 120 s (and come back full, the debt forgiven)."""
    import redis.asyncio as aioredis

    from store.redis import RedisRateLimiter, connect

    limiter = RedisRateLimiter(connect(redis_url))
    try:
        assert await limiter.take("debtor", 100, 100 / 60, 1100, 1) == 0
        await limiter.take("payer", 100, 100 / 60, 1, 1)
        client = aioredis.Redis.from_url(redis_url)
        debt_ttl = await client.ttl("corral:bucket:debtor")
        full_ttl = await client.ttl("corral:bucket:payer")
        await client.aclose()
    finally:
        await limiter.close()
    assert 11 * 60 < debt_ttl <= 11 * 60 + 61, debt_ttl
    assert full_ttl <= 120
