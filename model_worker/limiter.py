"""Admission control: `capacity` requests run, `max_queued` wait, the rest get a 503."""

from __future__ import annotations

import asyncio
from collections import deque

from protocol.errors import Overloaded


class Slot:
    """One admitted request; releasing it twice is harmless, so every exit path may release it."""

    def __init__(self, queue: AdmissionQueue) -> None:
        self._queue: AdmissionQueue | None = queue

    def release(self) -> None:
        if self._queue is not None:
            queue, self._queue = self._queue, None
            queue.release()


class AdmissionQueue:
    def __init__(self, capacity: int, max_queued: int) -> None:
        if capacity < 1 or max_queued < 0:
            raise ValueError("capacity must be >= 1 and max_queued >= 0")
        self.capacity = capacity
        self.max_queued = max_queued
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        return self.active + self.queued

    async def acquire(self) -> Slot:
        """Take a slot, waiting in FIFO order; raise Overloaded (503) when the queue is full."""
        if self.active < self.capacity and not self._waiters:
            self.active += 1
            return Slot(self)
        if len(self._waiters) >= self.max_queued:
            raise Overloaded(
                f"worker is at capacity ({self.capacity} running, {self.queued} queued); "
                "retry later"
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            else:
                self._waiters.remove(waiter)
            raise
        return Slot(self)

    def release(self) -> None:
        """Hand the slot to the next waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1
