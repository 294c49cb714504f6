"""Dispatch policies (controller/dispatch.py)."""

from __future__ import annotations

import random
from collections import Counter

from controller.dispatch import lottery, round_robin, shortest_queue
from protocol.control import WorkerRegistration
from store.base import WorkerRecord


def worker(name: str, in_flight: int = 0, capacity: int = 1, dispatched: int = 0) -> WorkerRecord:
    reg = WorkerRegistration(
        worker_id=name, url=f"http://127.0.0.1/{name}", models=["m"], capacity=capacity
    )
    return WorkerRecord(registration=reg, in_flight=in_flight, dispatched_total=dispatched)


def test_shortest_queue_picks_the_least_loaded() -> None:
    rng = random.Random(0)
    ws = [worker("a", 3), worker("b", 1), worker("c", 2)]
    assert {shortest_queue(ws, rng).worker_id for _ in range(20)} == {"b"}


def test_shortest_queue_normalises_by_capacity() -> None:
    rng = random.Random(0)
    ws = [worker("small", in_flight=2, capacity=2), worker("big", in_flight=4, capacity=8)]
    assert shortest_queue(ws, rng).worker_id == "big"


def test_shortest_queue_breaks_ties_at_random() -> None:
    rng = random.Random(1)
    ws = [worker("a", 1), worker("b", 1), worker("c", 5)]
    picks = Counter(shortest_queue(ws, rng).worker_id for _ in range(400))
    assert set(picks) == {"a", "b"}
    assert 150 < picks["a"] < 250


def test_lottery_is_weighted_by_capacity() -> None:
    rng = random.Random(2)
    ws = [worker("one", capacity=1), worker("three", capacity=3)]
    picks = Counter(lottery(ws, rng).worker_id for _ in range(4000))
    assert 0.70 < picks["three"] / 4000 < 0.80


def test_round_robin_picks_the_least_dispatched() -> None:
    rng = random.Random(0)
    ws = [worker("a", dispatched=5), worker("b", dispatched=4)]
    assert round_robin(ws, rng).worker_id == "b"


def test_cache_aware_prefers_the_longest_holder_within_the_margin() -> None:
    from controller.dispatch import Hint, cache_aware

    rng = random.Random(0)
    ws = [worker("a", 0), worker("b", 3), worker("c", 5)]
    hint = Hint(holders={"b": 4, "c": 6}, keys=6, margin=5)
    assert cache_aware(ws, rng, hint).worker_id == "c"  # longest, 5 beyond "a": within
    hint = Hint(holders={"b": 4, "c": 6}, keys=6, margin=4)
    assert cache_aware(ws, rng, hint).worker_id == "b"  # "c" over the margin: next longest
    hint = Hint(holders={"b": 4, "c": 6}, keys=6, margin=2)
    assert cache_aware(ws, rng, hint).worker_id == "a"  # both over: shortest queue


def test_cache_aware_ignores_a_shared_first_message_alone() -> None:
    from controller.dispatch import Hint, cache_aware

    rng = random.Random(0)
    ws = [worker("a", 1), worker("b", 0)]
    assert cache_aware(ws, rng, Hint(holders={"a": 1}, keys=3)).worker_id == "b"
    assert cache_aware(ws, rng, Hint(holders={"a": 1}, keys=1)).worker_id == "a"  # all of it


async def test_memory_prefix_map_is_bounded_and_forgets() -> None:
    from store.memory import MemoryPrefixMap

    now = [0.0]
    prefixes = MemoryPrefixMap(ttl=10, max_entries=3, clock=lambda: now[0])
    await prefixes.remember("m", ["k1", "k2"], "a")
    await prefixes.remember("m", ["k3", "k4"], "b")  # 4 entries: k1 (oldest) goes
    assert await prefixes.lookup("m", ["k1", "k2", "k4"]) == [None, "a", "b"]
    assert await prefixes.lookup("other", ["k2"]) == [None]  # per model
    now[0] = 11.0
    assert await prefixes.lookup("m", ["k2", "k4"]) == [None, None]
