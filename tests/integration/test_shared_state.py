"""Shared state on Redis: several controllers and gateways, restarts, and Redis failures.

Everything runs as real processes on loopback. The Redis servers here are the tests' own
(free port, append-only file in a temp dir), so they can be killed and restarted.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import Service, free_port, start_platform

from store import open_events

pytestmark = pytest.mark.slow
CHAT = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 8,
    "temperature": 0,
}


class RedisServer:
    """A redis-server of the test's own, persisting every write to its AOF before replying."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.service: Service | None = None

    def start(self) -> RedisServer:
        self.service = Service(
            f"redis-{self.port}",
            [
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            self.dir,
            program=["redis-server"],
        ).start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import redis

                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return self
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start:\n{self.service.log_tail()}")

    def kill(self) -> None:
        assert self.service is not None
        self.service.signal(signal.SIGKILL)
        assert self.service.proc is not None
        self.service.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        if server.service is not None:
            server.service.stop()


WORKER_TTL = 6.0  # the controller's default


def test_killing_a_controller_mid_load_fails_no_request(
    tiny_model_path: Path, tmp_path: Path, redis_url: str
) -> None:
    """Load keeps running past the worker TTL after the kill: no request fails, and the
    survivor has both workers live on heartbeats it received itself (the registrations the
    dead controller kept alive would have expired by then). Several controllers share state
    only on Redis, so there is no embedded variant."""
    stack = start_platform(
        tmp_path, tiny_model_path, store_url=redis_url, controllers=2, workers=2, gateways=2
    )
    try:
        gateways = [g.url for g in stack.gateways]
        results: list[int | str] = []
        stop = threading.Event()

        def load(gateway: str) -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    try:
                        r = client.post(f"{gateway}/v1/chat/completions", json=CHAT)
                        results.append(r.status_code)
                    except Exception as exc:  # counted, not lost in a thread
                        results.append(repr(exc))

        threads = [threading.Thread(target=load, args=(gateways[i % 2],)) for i in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(2)
            before_kill = len(results)
            stack.controllers[0].signal(signal.SIGKILL)
            killed_at = time.monotonic()
            time.sleep(WORKER_TTL + 3)
            after_ttl = len(results)
            survivor = stack.controllers[1]
            workers = httpx.get(f"{survivor.url}/internal/workers", timeout=5).json()
            time.sleep(2)  # and load still runs after the check
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=90)
        assert before_kill > 0 and after_ttl > before_kill and len(results) > after_ttl
        assert [s for s in results if s != 200] == []
        assert time.monotonic() - killed_at > WORKER_TTL
        assert len(workers) == 2
        assert all(w["last_heartbeat_age_s"] < WORKER_TTL for w in workers)
    finally:
        stack.stop()


@pytest.mark.parametrize("backend", ["embedded", "redis"])
def test_restarted_controller_has_its_workers_back_within_a_heartbeat(
    tiny_model_path: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    store_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    stack = start_platform(tmp_path, tiny_model_path, store_url=store_url, gateways=0)
    try:
        ctl = stack.controllers[0]
        ctl.signal(signal.SIGKILL)
        assert ctl.proc is not None
        ctl.proc.wait(timeout=10)
        ctl.start()  # same port, same store URL; the embedded registry starts empty
        ctl.wait_until(f"{ctl.url}/health", 60)
        back_at = time.monotonic()
        ctl.wait_until(f"{ctl.url}/internal/workers", 10, ok=lambda r: len(r.json()) == 1)
        assert time.monotonic() - back_at <= 2.0 + 1.0  # one 2 s heartbeat, plus slack
    finally:
        stack.stop()


def test_acknowledged_votes_survive_a_redis_crash(redis_server: RedisServer) -> None:
    async def write() -> list[str]:
        log = open_events(redis_server.url)
        try:
            return [await log.append("votes", {"n": i, "winner": "model_a"}) for i in range(200)]
        finally:
            await log.close()

    async def read() -> list[tuple[str, dict]]:
        log = open_events(redis_server.url)
        try:
            return await log.read("votes")
        finally:
            await log.close()

    acknowledged = asyncio.run(write())
    redis_server.kill()  # SIGKILL: no chance to save anything on the way out
    redis_server.start()
    stored = asyncio.run(read())
    assert [i for i, _ in stored] == acknowledged
    assert [r["n"] for _, r in stored] == list(range(200))


def test_redis_down_is_a_503_and_service_recovers_by_itself(
    tiny_model_path: Path, tmp_path: Path, redis_server: RedisServer
) -> None:
    stack = start_platform(tmp_path, tiny_model_path, store_url=redis_server.url)
    try:
        gateway = stack.gateways[0].url
        assert (
            httpx.post(f"{gateway}/v1/chat/completions", json=CHAT, timeout=60).status_code == 200
        )
        redis_server.kill()
        r = httpx.post(f"{gateway}/v1/chat/completions", json=CHAT, timeout=60)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "store_unavailable"
        assert "store" in r.json()["error"]["message"]
        redis_server.start()
        deadline = time.monotonic() + 20
        while True:
            r = httpx.post(f"{gateway}/v1/chat/completions", json=CHAT, timeout=60)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert r.status_code == 200, r.text
        for group in (stack.controllers, stack.workers, stack.gateways):  # nothing restarted
            assert all(s.alive() for s in group)
    finally:
        stack.stop()


def test_votes_through_the_web_ui_survive_a_redis_kill_and_restart(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Arena rounds voted through the web UI while its Redis is SIGKILLed and restarted:
    every vote the UI acknowledged is stored; the others were refused, never silently lost."""
    import contextlib
    import random

    from harness import FakeGateway, loopback

    from webui.arena import Refused
    from webui.service import Client
    from webui.settings import WebUISettings
    from webui.state import open_state

    me = Client(session="s", ip="203.0.113.9")
    timeline: dict[str, float] = {}

    def crash_and_restart() -> None:
        time.sleep(1.0)
        timeline["killed"] = time.monotonic()
        redis_server.kill()
        time.sleep(1.5)
        redis_server.start()
        timeline["restarted"] = time.monotonic()

    async def cast() -> tuple[list[tuple[str, float]], int]:
        fake = FakeGateway({"m1": ["a", "b"], "m2": ["c", "d"]}, delay=0)
        acked: list[tuple[str, float]] = []
        refused = 0
        async with loopback(fake.app) as url, contextlib.AsyncExitStack() as stack:
            settings = WebUISettings(
                api_url=f"{url}/v1",
                store_url=redis_server.url,
                ip_hash_salt="salt",
                session_rate_limit=100_000,
                ip_rate_limit=100_000,
                startup_timeout=5,
            )
            ui = await open_state(settings, stack, rng=random.Random(3))
            crash = asyncio.create_task(asyncio.to_thread(crash_and_restart))
            while not crash.done() or sum(t > timeline["restarted"] for _, t in acked) < 20:
                rnd = await ui.new_battle()
                async for _ in ui.send(rnd, "which is better?", me):
                    pass
                try:
                    await ui.vote(rnd, "model_a", me)
                except Refused as exc:
                    assert "NOT saved" in str(exc)
                    refused += 1
                else:
                    acked.append((rnd.conversation_id, time.monotonic()))
            await crash
        return acked, refused

    acked, refused = asyncio.run(cast())

    async def read() -> list[tuple[str, dict]]:
        log = open_events(redis_server.url)
        try:
            return await log.read("votes")
        finally:
            await log.close()

    stored = {record["conversation_id"] for _, record in asyncio.run(read())}
    assert [c for c, _ in acked if c not in stored] == []  # no acknowledged vote lost
    assert sum(t < timeline["killed"] for _, t in acked) > 0  # votes before the kill
    assert refused > 0  # votes while Redis was down were refused, with a message
