"""Gateway hardening (openai_api/auth.py, routes.py, relay.py): API keys with allowlists and
rate limits, body and message limits, /metrics and /ready."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from harness import loopback, serve, worker_app

from controller.app import create_app as controller_app
from controller.settings import ControllerSettings
from openai_api.app import create_app as gateway_app
from openai_api.settings import GatewaySettings
from store import KeyStore, open_keys

pytestmark = pytest.mark.asyncio(loop_scope="module")
CHAT = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 4,
    "temperature": 0,
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ctl_url(tiny_model_path: Path) -> AsyncIterator[str]:
    """A controller with one real tiny worker registered as "tiny" and as "other"."""
    ctl = controller_app(ControllerSettings(allowed_worker_hosts=["*"]))
    async with loopback(ctl) as url, loopback(worker_app(tiny_model_path)) as worker:
        async with httpx.AsyncClient(base_url=url) as c:
            for wid, model in (("w1", "tiny"), ("w2", "other")):
                await c.post(
                    "/internal/register",
                    json={
                        "worker_id": wid,
                        "url": worker,
                        "models": [model],
                        "capacity": 8,
                        "capabilities": ["chat", "completions", "embeddings"],
                    },
                )

            # keep both registrations alive for the module
            async def beat() -> None:
                while True:
                    await asyncio.sleep(1)
                    for wid in ("w1", "w2"):
                        await c.post("/internal/heartbeat", json={"worker_id": wid, "in_flight": 0})

            task = asyncio.create_task(beat())
            yield url
            task.cancel()


@contextlib.asynccontextmanager
async def gateway(ctl: str, store_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = gateway_app(
        GatewaySettings(controller_urls=[ctl], store_url=store_url, key_cache_ttl=0, **settings)
    )
    async with serve(app) as client:
        yield client


@pytest.fixture(params=["embedded", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'corral.db'}"


@contextlib.asynccontextmanager
async def keystore(url: str) -> AsyncIterator[KeyStore]:
    keys = open_keys(url)
    try:
        yield keys
    finally:
        await keys.close()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_required_keys_are_required_whatever_the_store_holds(
    ctl_url: str, store_url: str
) -> None:
    async with gateway(ctl_url, store_url, require_keys=True) as gw:
        # no key exists yet: still closed (the mode is explicit, not read from the store)
        r = await gw.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 401
        assert r.json()["error"] == {
            "message": "You didn't provide an API key. Send it as "
            "'Authorization: Bearer YOUR_KEY'.",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
        async with keystore(store_url) as keys:
            secret, record = await keys.create("ci", None, None, None)
        r = await gw.post("/v1/chat/completions", json=CHAT, headers=bearer("sk-wrong"))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key")
        assert (
            await gw.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))
        ).status_code == 200
        async with keystore(store_url) as keys:
            assert await keys.revoke(record.id)
        r = await gw.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))
        assert r.status_code == 401
        assert (await gw.post("/v1/chat/completions", json=CHAT)).status_code == 401


async def test_an_open_gateway_stays_open_when_keys_exist(ctl_url: str, store_url: str) -> None:
    """Without --require-keys the API is open, and says so; a key in the store changes nothing."""
    async with keystore(store_url) as keys:
        await keys.create("ci", None, None, None)
    async with gateway(ctl_url, store_url) as gw:
        assert (await gw.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_required_keys_with_an_unreadable_store_is_503_never_open(ctl_url: str) -> None:
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    async with gateway(ctl_url, dead, require_keys=True) as gw:
        r = await gw.post("/v1/chat/completions", json=CHAT, headers=bearer("sk-corral-x"))
        assert (r.status_code, r.json()["error"]["code"]) == (503, "store_unavailable")
        r = await gw.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 401


async def test_keys_are_stored_hashed(store_url: str) -> None:
    async with keystore(store_url) as keys:
        secret, _ = await keys.create("ci", ["tiny"], 5, 100)
        (listed,) = await keys.list()
    assert secret.startswith("sk-corral-") and secret not in repr(listed)
    assert listed.digest != secret and len(listed.digest) == 64
    if store_url.startswith("sqlite"):
        db = Path(store_url[len("sqlite:///") :])
        assert secret.encode() not in await asyncio.to_thread(db.read_bytes)


async def test_model_allowlist(ctl_url: str, store_url: str) -> None:
    async with keystore(store_url) as keys:
        secret, _ = await keys.create("tiny-only", ["tiny"], None, None)
    async with gateway(ctl_url, store_url, require_keys=True) as gw:
        r = await gw.post(
            "/v1/chat/completions", json={**CHAT, "model": "other"}, headers=bearer(secret)
        )
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "model_not_found"
        assert (
            await gw.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))
        ).status_code == 200
        models = (await gw.get("/v1/models", headers=bearer(secret))).json()["data"]
        assert [m["id"] for m in models] == ["tiny"]


async def test_requests_per_minute_gives_429_with_retry_after(ctl_url: str, store_url: str) -> None:
    async with keystore(store_url) as keys:
        secret, _ = await keys.create("slow", None, 2, None)
    async with gateway(ctl_url, store_url, require_keys=True) as gw:
        codes = [
            (await gw.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))).status_code
            for _ in range(2)
        ]
        assert codes == [200, 200]
        r = await gw.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(r.headers["Retry-After"]) <= 30  # 2/min refills one in 30 s


async def test_tokens_per_minute_counts_prompt_and_completion(ctl_url: str, store_url: str) -> None:
    async with keystore(store_url) as keys:
        secret, _ = await keys.create("thrifty", None, None, 20)  # one request uses ~17
    async with gateway(ctl_url, store_url, require_keys=True) as gw:
        for stream in (False, True):
            r = await gw.post(
                "/v1/chat/completions", json={**CHAT, "stream": stream}, headers=bearer(secret)
            )
            assert r.status_code == 200
            for _ in range(100):  # the charge lands in the background
                r = await gw.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))
                if r.status_code == 429:
                    break
                await asyncio.sleep(0.02)
            assert r.status_code == 429
            assert "tokens" in r.json()["error"]["message"]
            async with keystore(store_url) as keys:  # a fresh key for the streamed round
                secret, _ = await keys.create("thrifty", None, None, 20)


async def test_two_gateways_share_redis_buckets(ctl_url: str, redis_url: str) -> None:
    async with keystore(redis_url) as keys:
        secret, _ = await keys.create("shared", None, 2, None)
    async with (
        gateway(ctl_url, redis_url, require_keys=True) as a,
        gateway(ctl_url, redis_url, require_keys=True) as b,
    ):
        assert (
            await a.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))
        ).status_code == 200
        assert (
            await b.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))
        ).status_code == 200
        r = await a.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))
        assert r.status_code == 429


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_over_the_limit_is_413(ctl_url: str, tmp_path: Path, chunked: bool) -> None:
    big = b'{"model": "tiny", "messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}'
    async with gateway(ctl_url, f"sqlite:///{tmp_path}/c.db", max_body_bytes=4096) as gw:

        async def body() -> AsyncIterator[bytes]:
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        content: Any = body() if chunked else big
        r = await gw.post(
            "/v1/chat/completions", content=content, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "request_too_large"


async def test_too_many_messages_is_400(ctl_url: str, tmp_path: Path) -> None:
    many = [{"role": "user", "content": "x"}] * 5
    async with gateway(ctl_url, f"sqlite:///{tmp_path}/c.db", max_messages=4) as gw:
        r = await gw.post("/v1/chat/completions", json={**CHAT, "messages": many})
        assert r.status_code == 400
        assert r.json()["error"]["param"] == "messages"


async def test_metrics_and_ready(ctl_url: str, tmp_path: Path) -> None:
    async with gateway(ctl_url, f"sqlite:///{tmp_path}/c.db") as gw:
        await gw.post("/v1/chat/completions", json=CHAT)
        await gw.post("/v1/chat/completions", json={**CHAT, "stream": True})
        await gw.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
        assert (await gw.get("/ready")).status_code == 200
        text = (await gw.get("/metrics")).text
    for line in (
        'corral_api_requests_total{model="tiny",route="/v1/chat/completions",status="200"} 2.0',
        'corral_api_requests_total{model="",route="/v1/chat/completions",status="404"} 1.0',
        'corral_api_output_tokens_total{model="tiny"} 8.0',
        'corral_api_errors_total{type="invalid_request_error"} 1.0',
    ):
        assert line in text, line
    assert 'corral_api_ttft_seconds_count{model="tiny"} 2.0' in text
    assert 'corral_api_inter_token_seconds_count{model="tiny"}' in text


async def test_ready_is_503_when_no_controller_answers(tmp_path: Path) -> None:
    from procs import free_port

    settings = GatewaySettings(
        controller_urls=[f"http://127.0.0.1:{free_port()}"], store_url=f"sqlite:///{tmp_path}/c.db"
    )
    async with serve(gateway_app(settings)) as gw:
        assert (await gw.get("/health")).status_code == 200
        r = await gw.get("/ready")
        assert r.status_code == 503 and r.json()["error"]["code"] == "controller_unavailable"


async def test_controller_and_worker_metrics_and_ready(tiny_model_path: Path) -> None:
    ctl = controller_app(ControllerSettings(allowed_worker_hosts=["*"]))
    async with serve(ctl) as c:
        await c.post(
            "/internal/register",
            json={"worker_id": "w1", "url": "http://127.0.0.1:9", "models": ["m"], "capacity": 2},
        )
        await c.post("/internal/dispatch", json={"model": "m"})
        assert (await c.get("/ready")).json()["live_workers"] == 1
        text = (await c.get("/metrics")).text
        assert (
            'corral_controller_dispatches_total{model="m",policy="shortest_queue",'
            'worker="w1"} 1.0' in text
        )
        assert 'corral_controller_worker_in_flight{worker="w1"} 1.0' in text
    async with serve(worker_app(tiny_model_path)) as w:
        await w.post("/v1/chat/completions", json=CHAT)
        assert (await w.get("/ready")).status_code == 200
        text = (await w.get("/metrics")).text
        assert 'corral_worker_output_tokens_total{model="tiny"} 4.0' in text
        assert 'corral_worker_ttft_seconds_count{model="tiny"} 1.0' in text
        assert "corral_worker_in_flight 0.0" in text


async def test_env_points_tests_at_their_own_store() -> None:
    assert os.environ["CORRAL_STORE_URL"].startswith("sqlite:///")
