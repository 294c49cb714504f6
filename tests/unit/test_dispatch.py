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
