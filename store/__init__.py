"""State backends behind small interfaces: embedded (one host, no server) and Redis (shared).

The `open_*` functions pick the backend from a URL: none (embedded: the controller's memory for
the registry, a gateway's memory for rate-limit buckets, a SQLite file under $CORRAL_HOME for
events and API keys), `sqlite:///path`, or `redis://host:port/db`.

It imports only `protocol` and `servekit`; business rules stay in the services.
"""

from __future__ import annotations

from pathlib import Path

from store.base import (
    ApiKey,
    EventLog,
    KeyStore,
    RateLimiter,
    Registry,
    StoreUnavailable,
    WorkerRecord,
)

__all__ = [
    "ApiKey",
    "EventLog",
    "KeyStore",
    "RateLimiter",
    "Registry",
    "StoreUnavailable",
    "WorkerRecord",
    "open_events",
    "open_keys",
    "open_limiter",
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


def open_keys(url: str | None) -> KeyStore:
    if _is_redis(url):
        from store.redis import RedisKeyStore, connect

        return RedisKeyStore(connect(url))  # type: ignore[arg-type]
    from store.sqlite import SqliteDatabase, SqliteKeyStore

    return SqliteKeyStore(SqliteDatabase(_sqlite_path(url)))


def open_limiter(url: str | None) -> RateLimiter:
    """Redis buckets are shared by every gateway; embedded ones live in this gateway alone."""
    if _is_redis(url):
        from store.redis import RedisRateLimiter, connect

        return RedisRateLimiter(connect(url))  # type: ignore[arg-type]
    from store.memory_limits import MemoryRateLimiter

    return MemoryRateLimiter()


def _sqlite_path(url: str | None) -> Path:
    if url and url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if url:
        raise ValueError(f"unsupported store URL {url!r}: use redis://... or sqlite:///path")
    from servekit.paths import corral_home

    return corral_home() / "corral.db"


def describe_store(url: str | None) -> str:
    """Where a store URL points, for people: the password of a Redis URL left out."""
    if _is_redis(url):
        from urllib.parse import urlsplit

        assert url is not None
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return f"redis at {parts.scheme}://{netloc}{parts.path or '/0'}"
    return f"embedded SQLite at {_sqlite_path(url)}"
