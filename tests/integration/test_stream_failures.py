"""Streams through the gateway when things go wrong, with real processes on loopback: a worker
SIGKILLed mid-stream, and a client that walks away mid-stream."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import Platform, start_platform

pytestmark = pytest.mark.slow
LONG = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 480,
    "min_tokens": 480,
    "temperature": 0,
    "stream": True,
}


@pytest.fixture
def stack(tiny_model_path: Path, tmp_path: Path) -> Iterator[Platform]:
    platform = start_platform(
        tmp_path, tiny_model_path, worker_args=["--capacity", "1", "--max-queued", "0"]
    )
    yield platform
    platform.stop()


def test_worker_killed_mid_stream_gives_an_error_event_within_2s(
    stack: Platform,
) -> None:
    events: list[str] = []
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", f"{stack.gateway}/v1/chat/completions", json=LONG) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                events.append(line[6:])
            if len(events) == 5:
                break
        stack.workers[0].signal(signal.SIGKILL)
        killed = time.monotonic()
        error_at = None
        for line in lines:
            if line.startswith("data: "):
                events.append(line[6:])
                if '"error"' in line and error_at is None:
                    error_at = time.monotonic() - killed
    assert error_at is not None and error_at <= 2.0, error_at
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["type"] == "upstream_error" and error["code"] == "worker_failed"
    for event in events[:-2]:  # everything before the error event is whole, parseable JSON
        json.loads(event)


def test_client_walking_away_frees_the_worker_slot(stack: Platform) -> None:
    worker = stack.workers[0].url
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", f"{stack.gateway}/v1/chat/completions", json=LONG) as r:
            seen = 0
            for line in r.iter_lines():
                seen += line.startswith("data: ")
                if seen == 3:
                    break  # closing the stream drops the connection mid-generation
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            status = client.get(f"{worker}/internal/status").json()
            if status["in_flight"] == 0 and status["engine_running"] == 0:
                break
            time.sleep(0.02)
        assert status["in_flight"] == 0 and status["engine_running"] == 0
        metrics = client.get(f"{worker}/metrics").text
        generated = float(
            re.search(r'corral_worker_output_tokens_total\{model="tiny"\} (\S+)', metrics).group(1)
        )  # type: ignore[union-attr]
        assert generated < 480  # aborted, not run to its end
        # capacity 1, queue 0: the freed slot takes the next request at once
        r = client.post(
            f"{stack.gateway}/v1/chat/completions",
            json={**LONG, "stream": False, "max_tokens": 4, "min_tokens": 0},
        )
        assert r.status_code == 200
