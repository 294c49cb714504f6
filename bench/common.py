"""Helpers for benchmarks: start services, stream requests, summarise latencies."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from procs import Service, free_port, start_platform
from tiny_model import build_tiny_llama

__all__ = [
    "Service",
    "StreamResult",
    "build_tiny_llama",
    "free_port",
    "pct",
    "run_streams",
    "start_platform",
]


@dataclass
class StreamResult:
    ttft: float  # seconds from sending to the first content delta
    tokens: int  # completion tokens, from the stream's usage chunk
    duration: float  # seconds from sending to [DONE]
    ok: bool


async def stream_once(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> StreamResult:
    start = time.perf_counter()
    ttft = 0.0
    tokens = 0
    ok = False
    payload = {**body, "stream": True, "stream_options": {"include_usage": True}}
    async with client.stream("POST", url, json=payload) as r:
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                ok = r.status_code == 200 and tokens > 0
                break
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            if not ttft and any(c["delta"].get("content") for c in event.get("choices", ())):
                ttft = time.perf_counter() - start
    return StreamResult(ttft, tokens, time.perf_counter() - start, ok)


async def run_streams(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], concurrency: int, total: int
) -> tuple[list[StreamResult], float]:
    """`total` streams, `concurrency` at a time; returns results and wall time."""
    sem = asyncio.Semaphore(concurrency)

    async def one() -> StreamResult:
        async with sem:
            return await stream_once(client, url, body)

    start = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(total)))
    return list(results), time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
