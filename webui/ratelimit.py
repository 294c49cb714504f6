"""Sliding-window limits on generations, per user (signed cookie) and per client IP.

Each send or regenerate counts once against both windows, and only when both allow it (a
refused request costs nothing). Votes are not counted: a round takes one vote at most, and a
round needs a generation. The windows live in this process; several UIs behind one address
each keep their own.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from webui.arena import Refused


class SlidingWindow:
    """At most `limit` hits per key in any `window_s` seconds; limit 0 means unlimited."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may hit again; 0 when it may now."""
        if self.limit <= 0:
            return 0.0
        now = self._clock()
        hits = self._prune(key, now)
        if len(hits) < self.limit:
            return 0.0
        return max(0.0, hits[0] + self.window_s - now)

    def hit(self, key: str) -> None:
        if self.limit > 0:
            self._hits.setdefault(key, deque()).append(self._clock())

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if not hits:
            self._hits.pop(key, None)
        if len(self._hits) > 10_000:  # forget idle keys so memory stays bounded
            for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window_s]:
                del self._hits[k]
        return hits


class RateLimits:
    def __init__(
        self,
        per_session: int,
        per_ip: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = SlidingWindow(per_session, window_s, clock)
        self.ip = SlidingWindow(per_ip, window_s, clock)

    def acquire(self, session: str, ip: str | None) -> None:
        """Count one generation, or raise Refused saying how long to wait."""
        wait_session = self.session.retry_after(session)
        wait_ip = self.ip.retry_after(ip) if ip else 0.0
        if wait_session or wait_ip:
            who = "this browser" if wait_session >= wait_ip else "your network address"
            seconds = math.ceil(max(wait_session, wait_ip))
            raise Refused(f"Too many requests from {who}: please wait {seconds} s and try again.")
        self.session.hit(session)
        if ip:
            self.ip.hit(ip)
