"""Two workers of one model behind a controller and a gateway, as real processes.

Load is shared; a worker killed with SIGKILL stops getting traffic within the 6 s TTL and no
client request fails meanwhile (the gateway retries before the first byte).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from procs import Platform, start_platform

CHAT = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 24,
    "min_tokens": 24,
    "temperature": 0,
}


@pytest.fixture(scope="module")
def cluster(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory, store_url: str | None
) -> Iterator[Platform]:
    platform = start_platform(
        tmp_path_factory.mktemp("cluster-logs"),
        tiny_model_path,
        store_url=store_url,
        workers=2,
        worker_args=["--capacity", "4", "--threads", "1"],
    )
    yield platform
    platform.stop()


def chat(gateway: str) -> httpx.Response:
    return httpx.post(f"{gateway}/v1/chat/completions", json=CHAT, timeout=60)


def registry(controller: str) -> dict[str, str]:
    """Live workers, URL -> worker id."""
    workers = httpx.get(f"{controller}/internal/workers").json()
    return {w["registration"]["url"]: w["registration"]["worker_id"] for w in workers}


def worker_ids(controller: str) -> set[str]:
    return set(registry(controller).values())


def test_two_workers_share_40_requests_within_25_percent(cluster: Platform) -> None:
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: chat(cluster.gateway), range(40)))
    assert all(r.status_code == 200 for r in replies)
    counts = Counter(r.headers["x-corral-worker"] for r in replies)
    assert len(counts) == 2
    for n in counts.values():
        assert 15 <= n <= 25, counts  # 20 +- 25 %


def test_sigkilled_worker_is_dropped_within_ttl_and_no_request_fails(cluster: Platform) -> None:
    before = worker_ids(cluster.controller)
    victim = cluster.workers[0]
    victim_id = registry(cluster.controller)[victim.url]
    victim.signal(signal.SIGKILL)
    killed = time.monotonic()
    failures, served_by = 0, Counter()
    dropped_after = None
    with ThreadPoolExecutor(4) as pool:
        while time.monotonic() - killed < 8:
            replies = list(pool.map(lambda _: chat(cluster.gateway), range(4)))
            failures += sum(r.status_code != 200 for r in replies)
            if dropped_after is None and victim_id not in worker_ids(cluster.controller):
                dropped_after = time.monotonic() - killed
            if dropped_after is not None:
                served_by.update(r.headers["x-corral-worker"] for r in replies)
    assert failures == 0
    assert dropped_after is not None and dropped_after <= 6.5, dropped_after
    assert victim_id not in served_by and sum(served_by.values()) > 0
    after = [chat(cluster.gateway) for _ in range(10)]
    assert {r.headers["x-corral-worker"] for r in after} == before - {victim_id}
