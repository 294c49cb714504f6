"""Token buckets in this process's memory: the embedded default (one gateway)."""

from __future__ import annotations

import time
from collections.abc import Callable


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (level, updated)

    async def take(
        self, bucket: str, capacity: float, per_second: float, cost: float, require: float
    ) -> float:
        now = self._clock()
        level, updated = self._buckets.get(bucket, (capacity, now))
        level = min(capacity, level + (now - updated) * per_second)
        if level < require:
            self._buckets[bucket] = (level, now)
            return (require - level) / per_second
        self._buckets[bucket] = (level - cost, now)
        return 0.0

    async def close(self) -> None:
        self._buckets.clear()
