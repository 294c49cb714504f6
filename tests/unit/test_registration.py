"""The worker's link to the controller (model_worker/registration.py): it survives any failure,
and once the worker is shutting down it never registers again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from model_worker.registration import ControllerLink
from protocol.control import Heartbeat, WorkerRegistration

REGISTRATION = WorkerRegistration(
    worker_id="w1", url="http://127.0.0.1:9", models=["m"], capacity=1
)


def status() -> Heartbeat:
    return Heartbeat(worker_id="w1", in_flight=0, queued=0, healthy=True)


def link_with(handler: httpx.MockTransport) -> ControllerLink:
    client = httpx.AsyncClient(transport=handler)
    return ControllerLink(client, ["http://ctl:1"], REGISTRATION, status, interval=0.01)


def ok(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/internal/heartbeat":
        return httpx.Response(200, json={"known": True})
    return httpx.Response(200, json={"ok": True})


async def until(condition: Callable[[], object]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_reply_that_is_not_json_does_not_end_the_heartbeat() -> None:
    paths: list[str] = []

    def maintenance_page_first(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if len(paths) <= 3:  # a proxy's maintenance page, then a reply of the wrong shape
            return httpx.Response(200, text="<html>back soon</html>" if len(paths) < 3 else "[]")
        return ok(request)

    link = link_with(httpx.MockTransport(maintenance_page_first))
    task = link.start()
    try:
        await until(lambda: link.registered and "/internal/heartbeat" in paths)
        assert not link.dead()
    finally:
        task.cancel()


async def test_a_dead_heartbeat_loop_is_reported() -> None:
    link = link_with(httpx.MockTransport(ok))
    task = link.start()
    task.cancel()
    await until(task.done)
    assert link.dead()  # /health and /ready turn 503 on this


async def test_a_closed_link_never_registers_again() -> None:
    paths: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return ok(request)

    link = link_with(httpx.MockTransport(record))
    task = link.start()
    await until(lambda: link.registered)
    await link.close()
    await until(task.done)  # the loop ends by itself
    await asyncio.sleep(0.05)
    assert paths[-1] == "/internal/deregister" and paths.count("/internal/register") == 1
    assert not link.registered and not link.dead()


async def test_shutdown_during_a_registration_undoes_it() -> None:
    paths: list[str] = []
    gate = asyncio.Event()

    async def slow_register(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/internal/register":
            await gate.wait()
        return ok(request)

    link = link_with(httpx.MockTransport(slow_register))
    task = link.start()
    await until(lambda: paths == ["/internal/register"])
    await link.close()  # nothing to deregister yet
    gate.set()
    await until(task.done)
    assert paths == ["/internal/register", "/internal/deregister"]
    assert not link.registered
