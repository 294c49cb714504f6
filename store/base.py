"""The interfaces the services use; each backend implements them all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from protocol.control import Heartbeat, WorkerRegistration
from protocol.errors import ServiceUnavailable


class StoreUnavailable(ServiceUnavailable):
    """The store cannot be reached: a 503 (`store_unavailable`) the client may retry.

    The client is told only that the store is down; `str(exc)` keeps the detail (which store,
    what failed) for the log and for command-line tools.
    """

    default_code = "store_unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__("the state store is unavailable; retry shortly")
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


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

    async def append(self, stream: str, record: Mapping[str, Any], key: str | None = None) -> str:
        """Store the record durably, then return its id; raises StoreUnavailable otherwise.

        With a `key`, the write is idempotent: a second append with the same key (a retried
        write) stores nothing and returns the first record's id.
        """
        ...

    async def read(
        self, stream: str, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """The stream's records after id `after` (all when None), oldest first, with their ids;
        at most `limit` of them (a page; read again after the last id for the next)."""
        ...

    async def close(self) -> None: ...


@dataclass
class ApiKey:
    """An API key as stored: never the secret itself, only its SHA-256 digest."""

    id: str
    name: str
    prefix: str  # the secret's first characters, to tell keys apart in listings
    digest: str
    models: list[str] | None = None  # None: every model
    rpm: int | None = None  # requests per minute; None: unlimited
    tpm: int | None = None  # tokens (prompt + completion) per minute; None: unlimited
    created_at: float = 0.0
    revoked_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class KeyStore(Protocol):
    async def create(
        self, name: str, models: list[str] | None, rpm: int | None, tpm: int | None
    ) -> tuple[str, ApiKey]:
        """A new key: the secret (shown once, never stored) and its record."""
        ...

    async def list(self) -> list[ApiKey]: ...

    async def revoke(self, key_id: str) -> bool: ...

    async def lookup(self, secret: str) -> ApiKey | None:
        """The active key with this secret, if any."""
        ...

    async def any_keys(self) -> bool:
        """Whether any key was ever created: from then on the gateway requires keys, even
        when every key has been revoked (revoking the last key must not open the gateway)."""
        ...

    async def close(self) -> None: ...


class RateLimiter(Protocol):
    """Token buckets: `capacity` tokens, refilled at `per_second`, shared by everyone using
    the same store."""

    async def take(
        self, bucket: str, capacity: float, per_second: float, cost: float, require: float
    ) -> float:
        """Refill, then if the level is at least `require` take `cost` (the level may go
        negative) and return 0; else take nothing and return the seconds until it would be."""
        ...

    async def close(self) -> None: ...
