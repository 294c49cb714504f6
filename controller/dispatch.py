"""Dispatch policies: pure functions from live candidates to one worker.

`POLICIES` is the one list of them: the settings and the `--policy` flag take their choices
from it, so a new policy is a function here and a line in the table.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from store.base import WorkerRecord


def shortest_queue(candidates: Sequence[WorkerRecord], rng: random.Random) -> WorkerRecord:
    """Least loaded by in-flight requests per unit of capacity; ties break at random."""

    def load(r: WorkerRecord) -> float:
        return r.in_flight / r.registration.capacity

    best = min(load(r) for r in candidates)
    return rng.choice([r for r in candidates if load(r) == best])


def lottery(candidates: Sequence[WorkerRecord], rng: random.Random) -> WorkerRecord:
    """Random, weighted by capacity."""
    weights = [r.registration.capacity for r in candidates]
    return rng.choices(list(candidates), weights=weights, k=1)[0]


def round_robin(candidates: Sequence[WorkerRecord], rng: random.Random) -> WorkerRecord:
    """The candidate dispatched to least often so far (stateless: the counts live in the store)."""
    fewest = min(r.dispatched_total for r in candidates)
    return rng.choice([r for r in candidates if r.dispatched_total == fewest])


POLICIES: dict[str, Callable[[Sequence[WorkerRecord], random.Random], WorkerRecord]] = {
    "shortest_queue": shortest_queue,
    "lottery": lottery,
    "round_robin": round_robin,
}
