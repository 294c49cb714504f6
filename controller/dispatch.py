"""Dispatch policies: pure functions from live candidates to one worker.

`POLICIES` is the one list of them: the settings and the `--policy` flag take their choices
from it, so a new policy is a function here and a line in the table. Each takes the candidates,
a random source and a `Hint` (what is known beyond their loads; only `cache_aware` reads it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from store.base import WorkerRecord


@dataclass(frozen=True)
class Hint:
    """`holders`: worker id -> how many of the request's `keys` prefix keys it is known to
    hold (its longest cached prefix). `margin`: in-flight requests a holder may carry beyond
    the least-loaded candidate and still be preferred."""

    holders: Mapping[str, int] = field(default_factory=dict)
    keys: int = 0
    margin: float = 8.0


NO_HINT = Hint()


def shortest_queue(
    candidates: Sequence[WorkerRecord], rng: random.Random, hint: Hint = NO_HINT
) -> WorkerRecord:
    """Least loaded by in-flight requests per unit of capacity; ties break at random."""

    def load(r: WorkerRecord) -> float:
        return r.in_flight / r.registration.capacity

    best = min(load(r) for r in candidates)
    return rng.choice([r for r in candidates if load(r) == best])


def lottery(
    candidates: Sequence[WorkerRecord], rng: random.Random, hint: Hint = NO_HINT
) -> WorkerRecord:
    """Random, weighted by capacity."""
    weights = [r.registration.capacity for r in candidates]
    return rng.choices(list(candidates), weights=weights, k=1)[0]


def round_robin(
    candidates: Sequence[WorkerRecord], rng: random.Random, hint: Hint = NO_HINT
) -> WorkerRecord:
    """The candidate dispatched to least often so far (stateless: the counts live in the store)."""
    fewest = min(r.dispatched_total for r in candidates)
    return rng.choice([r for r in candidates if r.dispatched_total == fewest])


def cache_aware(
    candidates: Sequence[WorkerRecord], rng: random.Random, hint: Hint = NO_HINT
) -> WorkerRecord:
    """The candidate holding the longest known prefix of the request (its KV cache is warm),
    unless it carries more than `hint.margin` requests beyond the least-loaded candidate;
    then the next-longest holder within the margin; none: shortest queue.

    A holder of the first message alone does not count unless that is the whole request: a
    shared system prompt would otherwise pull every new conversation onto one worker, and it
    is soon cached on every worker anyway."""
    least = min(r.in_flight for r in candidates)

    def holds(r: WorkerRecord) -> bool:
        depth = hint.holders.get(r.worker_id, 0)
        return depth > 1 or (depth == 1 and hint.keys == 1)

    holders = [r for r in candidates if holds(r)]
    holders.sort(key=lambda r: (-hint.holders[r.worker_id], r.in_flight))
    for r in holders:
        if r.in_flight - least <= hint.margin:
            return r
    return shortest_queue(candidates, rng)


Policy = Callable[[Sequence[WorkerRecord], random.Random, Hint], WorkerRecord]

POLICIES: dict[str, Policy] = {
    "shortest_queue": shortest_queue,
    "lottery": lottery,
    "round_robin": round_robin,
    "cache_aware": cache_aware,
}
