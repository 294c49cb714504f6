"""The store interfaces behave the same on every backend (store/memory, sqlite, redis).

Redis runs for real on 127.0.0.1 in a database of its own, flushed around each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protocol.control import Heartbeat, WorkerRegistration
from store import EventLog, Registry, open_events, open_registry

TTL = 1.0  # for the tests of expiry; the others use a TTL that no slow moment can reach
LONG_TTL = 60.0


def reg(worker_id: str, models: list[str]) -> WorkerRegistration:
    return WorkerRegistration(
        worker_id=worker_id, url="http://127.0.0.1:1", models=models, capacity=2
    )


@pytest.fixture
def ttl() -> float:
    return LONG_TTL


@pytest.fixture(params=["embedded", "redis"])
async def registry(request: pytest.FixtureRequest, ttl: float) -> AsyncIterator[Registry]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    r = open_registry(url, ttl)
    yield r
    await r.close()


@pytest.fixture(params=["embedded", "redis"])
async def events(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    if request.param == "redis":
        log = open_events(request.getfixturevalue("redis_url"))
    else:
        log = open_events(f"sqlite:///{tmp_path / 'corral.db'}")
    yield log
    await log.close()


@pytest.mark.parametrize("ttl", [TTL])
async def test_registered_worker_is_live_until_its_ttl(registry: Registry) -> None:
    await registry.register(reg("w1", ["m"]))
    assert [w.worker_id for w in await registry.live_workers("m")] == ["w1"]
    await asyncio.sleep(TTL + 0.3)
    assert await registry.live_workers("m") == []
    assert not await registry.heartbeat(Heartbeat(worker_id="w1", in_flight=0))


@pytest.mark.parametrize("ttl", [TTL])
async def test_heartbeat_extends_life_and_corrects_load(registry: Registry) -> None:
    await registry.register(reg("w1", ["m"]))
    for _ in range(3):
        await registry.add_in_flight("w1", +1)
    for _ in range(6):  # beats keep it alive past two TTLs
        await asyncio.sleep(TTL / 3)
        assert await registry.heartbeat(Heartbeat(worker_id="w1", in_flight=1, queued=1))
    (w,) = await registry.live_workers()
    assert (w.in_flight, w.queued, w.dispatched_total, w.healthy) == (1, 1, 3, True)
    assert 0 <= w.age_s < TTL
    await registry.heartbeat(Heartbeat(worker_id="w1", in_flight=0, healthy=False))
    (w,) = await registry.live_workers()
    assert not w.healthy


async def test_in_flight_is_atomic_and_floored(registry: Registry) -> None:
    await registry.register(reg("w1", ["m"]))
    await asyncio.gather(*(registry.add_in_flight("w1", +1) for _ in range(50)))
    await asyncio.gather(*(registry.add_in_flight("w1", -1) for _ in range(60)))
    (w,) = await registry.live_workers()
    assert w.in_flight == 0 and w.dispatched_total == 50


async def test_deregister_and_known_models(registry: Registry) -> None:
    await registry.register(reg("w1", ["a", "b"]))
    await registry.register(reg("w2", ["b"]))
    assert sorted(w.worker_id for w in await registry.live_workers("b")) == ["w1", "w2"]
    await registry.deregister("w1")
    assert [w.worker_id for w in await registry.live_workers()] == ["w2"]
    assert await registry.known_models() == {"a", "b"}


async def test_re_registering_keeps_the_dispatch_count(registry: Registry) -> None:
    await registry.register(reg("w1", ["m"]))
    await registry.add_in_flight("w1", +1)
    await registry.register(reg("w1", ["m"]))
    (w,) = await registry.live_workers()
    assert w.dispatched_total == 1


async def test_events_append_and_read_in_order(events: EventLog) -> None:
    ids = [await events.append("votes", {"n": i, "winner": "model_a"}) for i in range(5)]
    await events.append("conversations", {"n": 99})
    got = await events.read("votes")
    assert [i for i, _ in got] == ids
    assert [r["n"] for _, r in got] == [0, 1, 2, 3, 4]
    assert [r["n"] for _, r in await events.read("conversations")] == [99]
    assert await events.read("nothing") == []


async def test_an_append_with_a_known_key_stores_nothing(events: EventLog) -> None:
    first = await events.append("votes", {"n": 1}, key="vote-1")
    again = await events.append("votes", {"n": 1}, key="vote-1")  # a retried write
    other = await events.append("votes", {"n": 2}, key="vote-2")
    elsewhere = await events.append("vote_index", {"n": 1}, key="vote-1")  # keys per stream
    assert again == first != other
    assert [r["n"] for _, r in await events.read("votes")] == [1, 2]
    assert [r["n"] for _, r in await events.read("vote_index")] == [1]
    assert elsewhere


async def test_events_are_read_in_pages_after_an_id(events: EventLog) -> None:
    ids = [await events.append("votes", {"n": i}) for i in range(7)]
    first = await events.read("votes", limit=3)
    assert [r["n"] for _, r in first] == [0, 1, 2]
    rest = await events.read("votes", after=first[-1][0], limit=3)
    assert [r["n"] for _, r in rest] == [3, 4, 5]
    assert [r["n"] for _, r in await events.read("votes", after=ids[5])] == [6]
    assert await events.read("votes", after=ids[6]) == []


async def test_two_registries_on_one_redis_share_state(redis_url: str) -> None:
    """What lets several controllers run side by side."""
    a, b = open_registry(redis_url, LONG_TTL), open_registry(redis_url, LONG_TTL)
    try:
        await a.register(reg("w1", ["m"]))
        await b.add_in_flight("w1", +1)
        (w,) = await a.live_workers("m")
        assert w.in_flight == 1
        assert await b.heartbeat(Heartbeat(worker_id="w1", in_flight=0))
    finally:
        await a.close()
        await b.close()


async def test_redis_down_is_store_unavailable() -> None:
    from store import StoreUnavailable

    r = open_registry("redis://127.0.0.1:1/0", LONG_TTL)  # nothing listens on port 1
    try:
        with pytest.raises(StoreUnavailable):
            await r.live_workers()
    finally:
        await r.close()
