"""Embedded durable state: one SQLite file (WAL, fsync on commit), no server to install."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from store.apikeys import digest, new_key
from store.base import ApiKey, StoreUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_stream ON events (stream, id);
CREATE TABLE IF NOT EXISTS event_keys (
    stream TEXT NOT NULL,
    key TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (stream, key)
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
"""


class SqliteDatabase:
    """One connection used from a worker thread at a time; every write is committed durably."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _insert(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            row_id = self._conn.execute(sql, args).lastrowid
            assert row_id is not None
            return row_id

    def _append_once(self, sql: str, args: tuple[Any, ...]) -> int:
        """INSERT the event unless its (stream, key) is known, in one transaction; its id."""
        stream, key, data = args
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                known = self._conn.execute(
                    "SELECT event_id FROM event_keys WHERE stream = ? AND key = ?", (stream, key)
                ).fetchone()
                if known is not None:
                    self._conn.execute("ROLLBACK")
                    return int(known[0])
                row_id = self._conn.execute(sql, (stream, data)).lastrowid
                assert row_id is not None
                self._conn.execute(
                    "INSERT INTO event_keys (stream, key, event_id) VALUES (?, ?, ?)",
                    (stream, key, row_id),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            return row_id

    async def append_once(self, sql: str, stream: str, key: str, data: str) -> int:
        return await self._off_loop(self._append_once, sql, (stream, key, data))  # type: ignore[no-any-return]

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await self._off_loop(self._query, sql, args)

    async def insert(self, sql: str, *args: Any) -> int:
        """Run an INSERT (committed and fsynced before this returns); the new row's id."""
        return await self._off_loop(self._insert, sql, args)

    async def write(self, sql: str, *args: Any) -> None:
        await self._off_loop(self._query, sql, args)

    async def _off_loop(self, fn: Any, sql: str, args: tuple[Any, ...]) -> Any:
        try:
            return await asyncio.to_thread(fn, sql, args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"embedded store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SqliteEventLog:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def append(self, stream: str, record: Mapping[str, Any], key: str | None = None) -> str:
        sql = "INSERT INTO events (stream, data) VALUES (?, ?)"
        data = json.dumps(dict(record))
        if key is None:
            return str(await self._db.insert(sql, stream, data))
        return str(await self._db.append_once(sql, stream, key, data))

    async def read(
        self, stream: str, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        rows = await self._db.query(
            "SELECT id, data FROM events WHERE stream = ? AND id > ? ORDER BY id LIMIT ?",
            stream,
            int(after) if after is not None else 0,
            -1 if limit is None else limit,
        )
        return await asyncio.to_thread(_decode, rows)

    async def close(self) -> None:
        self._db.close()


def _decode(rows: list[tuple[Any, ...]]) -> list[tuple[str, dict[str, Any]]]:
    return [(str(row_id), json.loads(data)) for row_id, data in rows]


class SqliteKeyStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def create(
        self, name: str, models: list[str] | None, rpm: int | None, tpm: int | None
    ) -> tuple[str, ApiKey]:
        secret, record = new_key(name, models, rpm, tpm)
        await self._db.insert(
            "INSERT INTO api_keys (id, digest, data) VALUES (?, ?, ?)",
            record.id,
            record.digest,
            json.dumps(record.to_json()),
        )
        return secret, record

    async def list(self) -> list[ApiKey]:
        rows = await self._db.query("SELECT data FROM api_keys ORDER BY rowid")
        return [ApiKey(**json.loads(data)) for (data,) in rows]

    async def revoke(self, key_id: str) -> bool:
        rows = await self._db.query("SELECT data FROM api_keys WHERE id = ?", key_id)
        if not rows:
            return False
        record = ApiKey(**json.loads(rows[0][0]))
        if record.revoked_at is None:
            record.revoked_at = time.time()
            await self._db.write(
                "UPDATE api_keys SET data = ? WHERE id = ?", json.dumps(record.to_json()), key_id
            )
        return True

    async def lookup(self, secret: str) -> ApiKey | None:
        rows = await self._db.query("SELECT data FROM api_keys WHERE digest = ?", digest(secret))
        if not rows:
            return None
        record = ApiKey(**json.loads(rows[0][0]))
        return record if record.revoked_at is None else None

    async def any_keys(self) -> bool:
        return bool(await self._db.query("SELECT 1 FROM api_keys LIMIT 1"))

    async def close(self) -> None:
        self._db.close()
