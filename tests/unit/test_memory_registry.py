"""The embedded registry (store/memory.py): TTL liveness, in-flight accounting."""

from __future__ import annotations

from protocol.control import Heartbeat, WorkerRegistration
from store.memory import MemoryRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reg(worker_id: str, models: list[str]) -> WorkerRegistration:
    return WorkerRegistration(
        worker_id=worker_id, url="http://127.0.0.1:1", models=models, capacity=2
    )


async def test_worker_expires_after_ttl_without_heartbeat() -> None:
    clock = Clock()
    r = MemoryRegistry(ttl=6.0, clock=clock)
    await r.register(reg("w1", ["m"]))
    clock.now += 5.9
    assert [w.worker_id for w in await r.live_workers("m")] == ["w1"]
    clock.now += 0.2
    assert await r.live_workers("m") == []
    assert not await r.heartbeat(Heartbeat(worker_id="w1", in_flight=0))  # must re-register


async def test_heartbeat_keeps_alive_and_corrects_in_flight() -> None:
    clock = Clock()
    r = MemoryRegistry(ttl=6.0, clock=clock)
    await r.register(reg("w1", ["m"]))
    await r.add_in_flight("w1", +1)
    await r.add_in_flight("w1", +1)
    clock.now += 4
    assert await r.heartbeat(Heartbeat(worker_id="w1", in_flight=1, queued=0))
    clock.now += 4
    (w,) = await r.live_workers("m")
    assert w.in_flight == 1  # the worker's own figure replaced the dispatch count
    assert w.dispatched_total == 2


async def test_in_flight_never_goes_negative() -> None:
    r = MemoryRegistry(ttl=6.0)
    await r.register(reg("w1", ["m"]))
    await r.add_in_flight("w1", -1)
    (w,) = await r.live_workers()
    assert w.in_flight == 0


async def test_known_models_outlive_their_workers() -> None:
    clock = Clock()
    r = MemoryRegistry(ttl=1.0, clock=clock)
    await r.register(reg("w1", ["a", "b"]))
    await r.deregister("w1")
    assert await r.live_workers() == []
    assert await r.known_models() == {"a", "b"}


async def test_live_workers_filters_by_model() -> None:
    r = MemoryRegistry(ttl=6.0)
    await r.register(reg("w1", ["a"]))
    await r.register(reg("w2", ["a", "b"]))
    assert sorted(w.worker_id for w in await r.live_workers("a")) == ["w1", "w2"]
    assert [w.worker_id for w in await r.live_workers("b")] == ["w2"]
