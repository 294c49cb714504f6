"""State backends behind small interfaces: embedded (one host, no server) and Redis (shared).

`open_registry` / `open_events` pick the backend from a URL: none (embedded: the controller's
memory for the registry, a SQLite file under $CORRAL_HOME for events), `sqlite:///path`, or
`redis://host:port/db`.
"""

from __future__ import annotations

from pathlib import Path

from store.base import EventLog, Registry, StoreUnavailable, WorkerRecord

__all__ = [
    "EventLog",
    "Registry",
    "StoreUnavailable",
    "WorkerRecord",
    "open_events",
    "open_registry",
]


def _is_redis(url: str | None) -> bool:
    return bool(url) and url.startswith(("redis://", "rediss://", "unix://"))  # type: ignore[union-attr]


def open_registry(url: str | None, ttl: float) -> Registry:
    if _is_redis(url):
        from store.redis import RedisRegistry, connect

        return RedisRegistry(connect(url), ttl)  # type: ignore[arg-type]
    from store.memory import MemoryRegistry

    return MemoryRegistry(ttl)


def open_events(url: str | None) -> EventLog:
    if _is_redis(url):
        from store.redis import RedisEventLog, connect

        return RedisEventLog(connect(url))  # type: ignore[arg-type]
    from store.sqlite import SqliteDatabase, SqliteEventLog

    return SqliteEventLog(SqliteDatabase(_sqlite_path(url)))


def _sqlite_path(url: str | None) -> Path:
    if url and url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if url:
        raise ValueError(f"unsupported store URL {url!r}: use redis://... or sqlite:///path")
    from corral.paths import corral_home

    return corral_home() / "corral.db"
