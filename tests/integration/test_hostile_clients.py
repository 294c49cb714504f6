"""Hostile clients against real processes on loopback (controller, one hf worker on the tiny
model, gateway): the largest allowed and the first refused batch, clients that stop reading,
clients that vanish before a non-streaming reply, and thousands of made-up model names.

The worker has two slots and both services drop a client that stops reading for 3 s
(`--write-idle-timeout 3`), so each case is over in seconds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from procs import Platform, start_platform

pytestmark = pytest.mark.slow
IDLE = 3
LIMITS = ["--max-prompts", "64", "--max-choices", "128", "--max-input-chars", "256000"]
# A long generation: 32 prompts in turn, 4 choices each, 400 tokens a choice, with logprobs
# (about a kilobyte of SSE per step): tens of seconds of work, megabytes of stream.
LONG = {
    "model": "tiny",
    "prompt": ["hello"] * 32,
    "n": 4,
    "max_tokens": 400,
    "min_tokens": 400,
    "logprobs": 5,
    "temperature": 1.0,
}
SHORT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
# A stream that fills socket buffers fast: 16 choices with 20 alternatives per token (about
# 24 kB of SSE per step), megabytes before it ends.
HEAVY = {
    **SHORT,
    "n": 16,
    "max_tokens": 480,
    "min_tokens": 480,
    "logprobs": True,
    "top_logprobs": 20,
    "temperature": 1.0,
    "stream": True,
}


@pytest.fixture(scope="module")
def stack(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    idle = ["--write-idle-timeout", str(IDLE)]
    platform = start_platform(
        tmp_path_factory.mktemp("hostile"),
        tiny_model_path,
        worker_args=["--capacity", "2", "--max-queued", "8", *idle, *LIMITS],
        gateway_args=[*idle, *LIMITS],
    )
    yield platform
    platform.stop()


def _status(stack: Platform) -> dict[str, Any]:
    return dict(httpx.get(f"{stack.workers[0].url}/internal/status", timeout=5).json())


def _registered(stack: Platform) -> bool:
    workers = httpx.get(f"{stack.controller}/internal/workers", timeout=5).json()
    return len(workers) == 1


def _wait_idle(stack: Platform, within: float) -> float:
    """Seconds until the worker has no request in flight; fails after `within`."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if _status(stack)["in_flight"] == 0:
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"worker still busy after {within} s: {_status(stack)}")


def _raw_post(base: str, path: str, body: dict[str, Any], rcvbuf: int = 4096) -> socket.socket:
    """Send a POST on a socket with a small receive buffer, and read nothing."""
    url = urlsplit(base)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((url.hostname or "127.0.0.1", url.port or 80))
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    sock.sendall(head + data)
    return sock


def _drain(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sent, until it closed or `timeout` passed without a byte."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return b"".join(chunks)


def test_the_largest_allowed_batch_is_served_and_the_worker_keeps_its_registration(
    stack: Platform,
) -> None:
    """64 prompts x n=2 is allowed; so is 256,000 characters of text (over the tiny model's
    context: a 400 after tokenizing it all, off the event loop). The worker heartbeats all
    along: it is registered on every check while they run and 8 s after."""
    batch = {"model": "tiny", "prompt": ["hello"] * 64, "n": 2, "max_tokens": 1}
    text = {"model": "tiny", "prompt": ["hello world " * 333 + "x"] * 64, "max_tokens": 1}
    chat = {**SHORT, "messages": [{"role": "user", "content": "hello world " * 21333}]}

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.gateway, timeout=120) as c:
            return await asyncio.gather(
                c.post("/v1/completions", json=batch),
                c.post("/v1/completions", json=text),
                c.post("/v1/chat/completions", json=chat),
            )

    async def watch() -> list[bool]:
        seen = []
        for _ in range(16):
            await asyncio.sleep(0.5)
            seen.append(await asyncio.to_thread(_registered, stack))
        return seen

    async def both() -> tuple[list[httpx.Response], list[bool]]:
        return await asyncio.gather(send_all(), watch())

    replies, seen = asyncio.run(both())
    assert replies[0].status_code == 200, replies[0].text
    assert len(replies[0].json()["choices"]) == 128
    for r in replies[1:]:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "context_length_exceeded"
    time.sleep(8)
    assert all(seen) and _registered(stack), seen


@pytest.mark.parametrize("via", ["gateway", "worker"])
def test_the_first_disallowed_batch_is_400_and_costs_the_worker_nothing(
    stack: Platform, via: str
) -> None:
    base = stack.gateway if via == "gateway" else stack.workers[0].url
    over = [
        ("/v1/completions", {"model": "tiny", "prompt": ["a"] * 65, "max_tokens": 1}, "prompt"),
        ("/v1/completions", {"model": "tiny", "prompt": ["a"] * 64, "n": 3}, "n"),
        ("/v1/completions", {"model": "tiny", "prompt": [[1] * 4001] * 64}, "prompt"),
        ("/v1/completions", {"model": "tiny", "prompt": "a", "min_tokens": 17}, "min_tokens"),
        ("/v1/chat/completions", {**SHORT, "stop": ["x" * 257]}, "stop"),
    ]
    before = _status(stack)["in_flight"]
    for path, body, param in over:
        r = httpx.post(f"{base}{path}", json=body, timeout=30)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["param"] == param
    assert before == 0
    time.sleep(8)
    assert _registered(stack)


@pytest.mark.parametrize("via", ["gateway", "worker"])
def test_clients_that_stop_reading_lose_their_streams_and_free_the_slots(
    stack: Platform, via: str
) -> None:
    """Both slots taken by streams nobody reads: the stalled sends time out, the streams are
    cut (no [DONE]), the generations are aborted and the slots freed; a normal request
    queued behind them is served meanwhile."""
    _wait_idle(stack, 30)
    base = stack.gateway if via == "gateway" else stack.workers[0].url
    stalled = [_raw_post(base, "/v1/chat/completions", HEAVY) for _ in range(2)]
    time.sleep(1)
    assert _status(stack)["active"] == 2
    start = time.monotonic()
    r = httpx.post(f"{stack.gateway}/v1/chat/completions", json=SHORT, timeout=60)
    served_after = time.monotonic() - start
    assert r.status_code == 200, r.text
    freed_after = _wait_idle(stack, 30)
    for sock in stalled:
        got = _drain(sock, 5)
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
        assert b"data: [DONE]" not in got  # cut, not finished
    assert served_after < 30 and freed_after < 30, (served_after, freed_after)


def test_a_client_that_vanishes_before_a_non_streaming_reply_aborts_it(stack: Platform) -> None:
    _wait_idle(stack, 30)
    sock = _raw_post(stack.gateway, "/v1/completions", LONG)
    time.sleep(1.5)
    assert _status(stack)["active"] == 1
    sock.close()
    assert _wait_idle(stack, 5) < 5  # the generation alone would take tens of seconds


def test_ten_thousand_made_up_model_names_leave_memory_and_metrics_bounded(
    stack: Platform,
) -> None:
    gateway = psutil.Process(stack.gateways[0].pid)
    controller = psutil.Process(stack.controllers[0].pid)

    async def flood(count: int) -> list[int]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=stack.gateway, timeout=30, limits=limits) as c:
            sem = asyncio.Semaphore(32)

            async def one() -> int:
                async with sem:
                    body = {**SHORT, "model": uuid.uuid4().hex}
                    return (await c.post("/v1/chat/completions", json=body)).status_code

            return await asyncio.gather(*(one() for _ in range(count)))

    asyncio.run(flood(500))  # warm up: allocator pools, connection pools
    sizes = [
        len(httpx.get(f"{s.url}/metrics").content)
        for s in (stack.gateways[0], stack.controllers[0])
    ]
    rss = [gateway.memory_info().rss, controller.memory_info().rss]
    statuses = asyncio.run(flood(10_000))
    assert set(statuses) == {404}
    after = [
        len(httpx.get(f"{s.url}/metrics").content)
        for s in (stack.gateways[0], stack.controllers[0])
    ]
    grown = [gateway.memory_info().rss - rss[0], controller.memory_info().rss - rss[1]]
    assert all(a - b < 2048 for a, b in zip(after, sizes, strict=True)), (sizes, after)
    assert all(g < 20 * 2**20 for g in grown), grown
