"""Embedded registry: the controller's own memory. One controller, nothing to install."""

from __future__ import annotations

import time
from collections import OrderedDict
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


class MemoryPrefixMap:
    """Prefix key -> worker in this controller's memory: least recently written entries go
    first beyond `max_entries`, and any entry after `ttl` seconds."""

    def __init__(
        self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    async def lookup(self, model: str, keys: list[str]) -> list[str | None]:
        now = self._clock()
        found: list[str | None] = []
        for key in keys:
            entry = self._entries.get((model, key))
            found.append(entry[0] if entry is not None and entry[1] > now else None)
        return found

    async def remember(self, model: str, keys: list[str], worker_id: str) -> None:
        expires = self._clock() + self._ttl
        for key in keys:
            self._entries[(model, key)] = (worker_id, expires)
            self._entries.move_to_end((model, key))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def close(self) -> None:
        self._entries.clear()
