"""The interfaces the services use; each backend implements them all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from protocol.control import Heartbeat, WorkerRegistration


class StoreUnavailable(Exception):
    """The store cannot be reached; callers answer 503 and retry later."""


@dataclass
class WorkerRecord:
    registration: WorkerRegistration
    in_flight: int = 0
    queued: int = 0
    healthy: bool = True
    last_seen: float = 0.0  # when the last register/heartbeat arrived (store clock)
    age_s: float = 0.0  # seconds since then, as of the read
    dispatched_total: int = 0

    @property
    def worker_id(self) -> str:
        return self.registration.worker_id


class Registry(Protocol):
    """Live workers (liveness is a TTL) and their in-flight counts."""

    async def register(self, registration: WorkerRegistration) -> None: ...

    async def heartbeat(self, beat: Heartbeat) -> bool:
        """Refresh liveness and correct the in-flight count; False if the worker is unknown."""
        ...

    async def deregister(self, worker_id: str) -> None: ...

    async def live_workers(self, model: str | None = None) -> list[WorkerRecord]: ...

    async def known_models(self) -> set[str]:
        """Every model any worker has ever registered (404 for others, 503 when none is live)."""
        ...

    async def add_in_flight(self, worker_id: str, delta: int) -> None:
        """+1 at dispatch, -1 at release; never below zero."""
        ...

    async def close(self) -> None: ...


class EventLog(Protocol):
    """Append-only streams of records (votes, finished conversations)."""

    async def append(self, stream: str, record: Mapping[str, Any]) -> str:
        """Store the record durably, then return its id; raises StoreUnavailable otherwise."""
        ...

    async def read(self, stream: str) -> list[tuple[str, dict[str, Any]]]:
        """Every record of the stream, oldest first, with its id."""
        ...

    async def close(self) -> None: ...
