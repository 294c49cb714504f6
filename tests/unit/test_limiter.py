"""Admission control (model_worker/limiter.py): capacity, FIFO queue, 503 when full."""

from __future__ import annotations

import asyncio

import pytest

from model_worker.limiter import AdmissionQueue
from protocol.errors import Overloaded


async def test_admits_up_to_capacity_then_queues_then_refuses() -> None:
    q = AdmissionQueue(capacity=2, max_queued=1)
    a = await q.acquire()
    await q.acquire()
    waiting = asyncio.create_task(q.acquire())
    await asyncio.sleep(0)
    assert (q.active, q.queued, q.in_flight) == (2, 1, 3)
    with pytest.raises(Overloaded) as info:
        await q.acquire()
    assert info.value.status_code == 503
    a.release()
    third = await asyncio.wait_for(waiting, 1)
    assert (q.active, q.queued) == (2, 0)
    third.release()
    assert q.active == 1


async def test_release_is_idempotent() -> None:
    q = AdmissionQueue(capacity=1, max_queued=0)
    slot = await q.acquire()
    slot.release()
    slot.release()
    assert q.active == 0
    again = await q.acquire()
    assert q.active == 1
    again.release()


async def test_queue_is_fifo() -> None:
    q = AdmissionQueue(capacity=1, max_queued=5)
    first = await q.acquire()
    order: list[int] = []

    async def wait(i: int) -> None:
        slot = await q.acquire()
        order.append(i)
        slot.release()

    tasks = [asyncio.create_task(wait(i)) for i in range(4)]
    await asyncio.sleep(0)
    first.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert q.active == 0


async def test_cancelled_waiter_leaves_the_queue_without_leaking_a_slot() -> None:
    q = AdmissionQueue(capacity=1, max_queued=2)
    first = await q.acquire()
    waiter = asyncio.create_task(q.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert q.queued == 0
    first.release()
    assert q.active == 0
