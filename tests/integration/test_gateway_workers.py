"""`corral api --workers N`: several gateway processes on one port share one set of limits.

Real processes on loopback: a controller, the benchmark's fake upstream (no model: it answers
at once) and a gateway with `--workers 2`, on the embedded store (the buckets' SQLite file
under $CORRAL_HOME) and on Redis.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from procs import Service, free_port

FAKE_WORKER = Path(__file__).resolve().parents[2] / "bench" / "fake_worker.py"
KEY = "sk-test-workers"


@pytest.fixture(params=["embedded", "redis"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    env = {"CORRAL_HOME": str(tmp_path / "home")}
    store: list[str] = []
    if request.param == "redis":
        store = ["--store-url", request.getfixturevalue("redis_url")]
    services: list[Service] = []

    def start(s: Service, port: int) -> Service:
        s.url = f"http://127.0.0.1:{port}"
        services.append(s.start())
        return s

    try:
        cport, wport, gport = free_port(), free_port(), free_port()
        ctl = start(
            Service("controller", ["controller", "--port", str(cport)], tmp_path, env), cport
        )
        ctl.wait_until(f"{ctl.url}/health", 60)
        argv = [str(FAKE_WORKER), "--port", str(wport), "--controller-url", ctl.url]
        argv += ["--tokens", "4", "--interval", "0"]
        start(Service("fake", argv, tmp_path, env, program=[sys.executable]), wport)
        argv = ["openai_api", "--port", str(gport), "--controller-url", ctl.url, *store]
        argv += ["--api-key", KEY, "--require-keys", "--static-key-rpm", "10", "--workers", "2"]
        gw = start(Service("gateway", argv, tmp_path, env), gport)
        gw.wait_until(f"{gw.url}/health", 60)
        ctl.wait_until(f"{ctl.url}/internal/workers", 30, ok=lambda r: len(r.json()) == 1)
        yield gw
    finally:
        for s in reversed(services):
            s.stop()


async def _chat(url: str) -> int:
    # a connection of its own per request, so that both processes take some
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        body = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
        r = await c.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
        )
        return r.status_code


def test_two_gateway_processes_share_one_rpm_bucket(gateway: Service) -> None:
    children = [" ".join(p.cmdline()) for p in psutil.Process(gateway.pid).children()]
    assert len([c for c in children if "spawn_main" in c]) == 2, children

    async def burst() -> Counter[int]:
        return Counter(await asyncio.gather(*(_chat(gateway.url) for _ in range(30))))

    statuses = asyncio.run(burst())
    assert statuses == {200: 10, 429: 20}
    # /metrics sums every process's counts, whichever process answers the scrape
    for _ in range(4):
        with httpx.Client(base_url=gateway.url) as c:  # a new connection each time
            text = c.get("/metrics").text
        assert _requests(text, "200") == 10 and _requests(text, "429") == 20, text


def _requests(metrics: str, status: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("corral_api_requests_total{")
        and "/v1/chat/completions" in line
        and f'status="{status}"' in line
    )
