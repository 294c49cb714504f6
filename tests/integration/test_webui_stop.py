"""Stop in the web UI reaches the engines: with real workers behind a real gateway, stopping a
battle's two answers frees both workers' slots (their /internal/status says so)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import Platform, start_platform

from webui.gateway import Delta, Gateway, Sampling

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tiny_model_path: Path, tmp_path: Path) -> Iterator[Platform]:
    platform = start_platform(
        tmp_path,
        tiny_model_path,
        workers=2,
        worker_args=["--capacity", "1", "--max-queued", "0"],
    )
    yield platform
    platform.stop()


def busy(worker: str) -> tuple[int, int]:
    """(requests in flight, generations the engine runs) on the worker."""
    status = httpx.get(f"{worker}/internal/status", timeout=5).json()
    return int(status["in_flight"]), int(status["engine_running"])


async def test_stop_frees_both_workers(stack: Platform) -> None:
    gateway = Gateway.connect(f"{stack.gateway}/v1", None, timeout=60)
    stop = asyncio.Event()
    ask = [{"role": "user", "content": "hi"}]
    long = Sampling(temperature=0.0, top_p=1.0, max_tokens=480)
    seen = [0, 0]
    workers = [w.url for w in stack.workers]
    try:
        sides = gateway.stream_sides([("tiny", ask, long), ("tiny", ask, long)], stop=stop)
        async for batch in sides:
            for event in batch:
                assert isinstance(event, Delta), event  # neither side ends by itself
                seen[event.side] += 1
            if min(seen) >= 3 and not stop.is_set():
                # one answer on each worker (capacity 1 each)
                assert [busy(w)[0] for w in workers] == [1, 1]
                stop.set()  # what the Stop button does
        assert stop.is_set(), "the answers ended before they could be stopped"
        stopped = time.monotonic()
        while any(busy(w) != (0, 0) for w in workers):
            assert time.monotonic() - stopped < 2, [busy(w) for w in workers]
            await asyncio.sleep(0.05)
    finally:
        await gateway.close()
