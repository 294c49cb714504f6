"""Embedded registry: the controller's own memory. One controller, nothing to install."""

from __future__ import annotations

import time
from collections.abc import Callable

from protocol.control import Heartbeat, WorkerRegistration
from store.base import WorkerRecord


class MemoryRegistry:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._workers: dict[str, WorkerRecord] = {}
        self._models: set[str] = set()

    async def register(self, registration: WorkerRegistration) -> None:
        previous = self._workers.get(registration.worker_id)
        record = WorkerRecord(registration=registration, last_seen=self._clock())
        if previous is not None:
            record.in_flight = previous.in_flight
            record.dispatched_total = previous.dispatched_total
        self._workers[registration.worker_id] = record
        self._models.update(registration.models)

    async def heartbeat(self, beat: Heartbeat) -> bool:
        record = self._live(beat.worker_id)
        if record is None:
            return False
        record.last_seen = self._clock()
        record.in_flight = beat.in_flight
        record.queued = beat.queued
        record.healthy = beat.healthy
        return True

    async def deregister(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)

    async def live_workers(self, model: str | None = None) -> list[WorkerRecord]:
        self._expire()
        now = self._clock()
        live = [
            r for r in self._workers.values() if model is None or model in r.registration.models
        ]
        for r in live:
            r.age_s = now - r.last_seen
        return live

    async def known_models(self) -> set[str]:
        return set(self._models)

    async def add_in_flight(self, worker_id: str, delta: int) -> None:
        record = self._workers.get(worker_id)
        if record is not None:
            record.in_flight = max(0, record.in_flight + delta)
            if delta > 0:
                record.dispatched_total += delta

    async def close(self) -> None:
        self._workers.clear()

    def _live(self, worker_id: str) -> WorkerRecord | None:
        self._expire()
        return self._workers.get(worker_id)

    def _expire(self) -> None:
        deadline = self._clock() - self._ttl
        for worker_id in [w for w, r in self._workers.items() if r.last_seen < deadline]:
            del self._workers[worker_id]
