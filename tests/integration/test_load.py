"""The load test as a test with a threshold, sized for CI: 100 streaming clients for 20 s
through one gateway over two workers (a fast tiny model), and not one failure. A stream that
ends with an error event, or without `[DONE]`, is a failure (bench/load_test.py's rule, which
this test shares so that the bench cannot rot unnoticed)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest
from procs import start_platform
from tiny_model import build_tiny_llama

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from load_test import BODY, read_stream

pytestmark = pytest.mark.slow
CLIENTS = 100
SECONDS = 20.0


async def _load(gateway: str) -> dict[str, int]:
    counts = {"ok": 0}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:
        stop_at = asyncio.get_running_loop().time() + SECONDS

        async def client() -> None:
            while asyncio.get_running_loop().time() < stop_at:
                start = asyncio.get_running_loop().time()
                try:
                    async with session.post(f"{gateway}/v1/chat/completions", json=BODY) as r:
                        ok, _, error = await read_stream(r, start)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    ok, error = False, type(exc).__name__
                key = "ok" if ok else str(error)
                counts[key] = counts.get(key, 0) + 1

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return counts


def test_100_streaming_clients_for_20_s_over_two_workers_without_a_failure(
    tmp_path: Path,
) -> None:
    model = build_tiny_llama(tmp_path / "tiny-fast", layers=1, hidden=64)
    platform = start_platform(
        tmp_path,
        model,
        workers=2,
        worker_args=["--capacity", str(CLIENTS), "--max-queued", str(CLIENTS)],
        extra_args=["--log-level", "warning"],
    )
    try:
        counts = asyncio.run(_load(platform.gateway))
    finally:
        platform.stop()
    failures = {k: v for k, v in counts.items() if k != "ok"}
    assert failures == {}, counts
    assert counts["ok"] >= CLIENTS, counts  # every client finished at least one stream
