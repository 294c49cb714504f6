"""Per-session and per-IP sliding windows, on a fake clock."""

from __future__ import annotations

import pytest

from webui.arena import Refused
from webui.ratelimit import RateLimits, SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_window_allows_limit_hits_then_waits_for_the_oldest() -> None:
    clock = Clock()
    w = SlidingWindow(2, 10.0, clock)
    for _ in range(2):
        assert w.retry_after("k") == 0
        w.hit("k")
        clock.now += 1
    assert w.retry_after("k") == pytest.approx(8.0)
    clock.now += 8
    assert w.retry_after("k") == 0


def test_zero_means_unlimited() -> None:
    w = SlidingWindow(0, 10.0, Clock())
    for _ in range(100):
        w.hit("k")
    assert w.retry_after("k") == 0


def test_session_limit_refuses_with_a_wait() -> None:
    clock = Clock()
    limits = RateLimits(per_session=2, per_ip=100, window_s=60, clock=clock)
    limits.acquire("s1", "1.2.3.4")
    limits.acquire("s1", "1.2.3.4")
    with pytest.raises(Refused, match=r"this browser: please wait 60 s"):
        limits.acquire("s1", "1.2.3.4")
    limits.acquire("s2", "1.2.3.4")  # another session on the same address is fine


def test_ip_limit_spans_sessions_and_refusals_cost_nothing() -> None:
    clock = Clock()
    limits = RateLimits(per_session=100, per_ip=2, window_s=30, clock=clock)
    limits.acquire("s1", "10.0.0.1")
    limits.acquire("s2", "10.0.0.1")
    for _ in range(5):
        with pytest.raises(Refused, match="your network address"):
            limits.acquire("s3", "10.0.0.1")
    limits.acquire("s3", "10.0.0.2")
    clock.now += 30
    limits.acquire("s3", "10.0.0.1")  # the refused tries were not counted against s3
    limits.acquire("s3", "10.0.0.1")
