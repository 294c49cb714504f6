"""Shared state in Redis: any number of controllers, gateways and UIs on one data set.

Liveness is a key with a TTL (no sweeper), in-flight counts are atomic hash counters, events
are Redis streams. Key names live in `store.keys`. Every Redis failure surfaces as
StoreUnavailable (the services answer 503); the client reconnects by itself with backoff, so
the services recover when Redis returns without being restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from redis import asyncio as aioredis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from protocol.control import Heartbeat, WorkerRegistration
from store import keys
from store.apikeys import digest, new_key
from store.base import ApiKey, StoreUnavailable, WorkerRecord

# +delta on in_flight, never below zero; dispatches counted too. Runs atomically in Redis.
_ADD_IN_FLIGHT = """
local n = redis.call('HINCRBY', KEYS[1], 'in_flight', ARGV[1])
if n < 0 then redis.call('HSET', KEYS[1], 'in_flight', 0) end
if tonumber(ARGV[1]) > 0 then redis.call('HINCRBY', KEYS[1], 'dispatched_total', ARGV[1]) end
return n
"""


# A token bucket (see store.base.RateLimiter.take), on Redis' clock so every gateway agrees.
_TAKE = """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local cost, require = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 'level', 'updated')
local level, updated = tonumber(state[1]), tonumber(state[2])
if level == nil then level, updated = capacity, now end
level = math.min(capacity, level + (now - updated) * rate)
local wait = 0
if level < require then wait = (require - level) / rate else level = level - cost end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'updated', tostring(now))
-- kept until it is full again (a bucket in debt must not expire back to full; a daily cap
-- refills over a day), a month at most
local ttl = math.max(tonumber(ARGV[5]), math.ceil(capacity / rate))
if level < capacity then ttl = math.max(ttl, math.ceil((capacity - level) / rate) + 60) end
redis.call('EXPIRE', KEYS[1], math.min(ttl, 2592000))
return tostring(wait)
"""

# XADD once per idempotency key: a retried append finds the key and returns the first id.
_APPEND_ONCE = """
local known = redis.call('GET', KEYS[2])
if known then return known end
local id = redis.call('XADD', KEYS[1], '*', 'data', ARGV[1])
redis.call('SET', KEYS[2], id, 'EX', ARGV[2])
return id
"""


def connect(url: str) -> aioredis.Redis:
    """A client with strict timeouts that retries a dropped connection a few times."""
    return aioredis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        decode_responses=True,
    )


@contextlib.asynccontextmanager
async def _guard() -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc


class RedisRegistry:
    def __init__(self, redis: aioredis.Redis, ttl: float) -> None:
        self._r = redis
        self._ttl_ms = int(ttl * 1000)
        self._add = redis.register_script(_ADD_IN_FLIGHT)

    async def register(self, registration: WorkerRegistration) -> None:
        wid = registration.worker_id
        async with _guard():
            pipe = self._r.pipeline(transaction=True)
            pipe.set(keys.worker(wid), registration.model_dump_json(), px=self._ttl_ms)
            pipe.sadd(keys.WORKERS, wid)
            pipe.sadd(keys.MODELS, *registration.models)
            pipe.hset(keys.worker_load(wid), mapping={"healthy": 1, "queued": 0})
            pipe.hsetnx(keys.worker_load(wid), "in_flight", 0)
            await pipe.execute()

    async def heartbeat(self, beat: Heartbeat) -> bool:
        async with _guard():
            if not await self._r.pexpire(keys.worker(beat.worker_id), self._ttl_ms):
                return False
            await self._r.hset(
                keys.worker_load(beat.worker_id),
                mapping={
                    "in_flight": beat.in_flight,
                    "queued": beat.queued,
                    "healthy": int(beat.healthy),
                },
            )
            return True

    async def deregister(self, worker_id: str) -> None:
        async with _guard():
            pipe = self._r.pipeline(transaction=True)
            pipe.delete(keys.worker(worker_id), keys.worker_load(worker_id))
            pipe.srem(keys.WORKERS, worker_id)
            await pipe.execute()

    async def live_workers(self, model: str | None = None) -> list[WorkerRecord]:
        async with _guard():
            ids = sorted(str(i) for i in await self._r.smembers(keys.WORKERS))
            if not ids:
                return []
            pipe = self._r.pipeline(transaction=False)
            for wid in ids:
                pipe.get(keys.worker(wid))
                pipe.pttl(keys.worker(wid))
                pipe.hgetall(keys.worker_load(wid))
            raw = await pipe.execute()
            records, dead = [], []
            for i, wid in enumerate(ids):
                doc, pttl, load = raw[3 * i : 3 * i + 3]
                if doc is None:
                    dead.append(wid)
                    continue
                reg = WorkerRegistration.model_validate_json(doc)
                if model is not None and model not in reg.models:
                    continue
                records.append(
                    WorkerRecord(
                        registration=reg,
                        in_flight=int(load.get("in_flight", 0)),
                        queued=int(load.get("queued", 0)),
                        healthy=load.get("healthy", "1") == "1",
                        dispatched_total=int(load.get("dispatched_total", 0)),
                        age_s=max(0.0, (self._ttl_ms - max(pttl, 0)) / 1000),
                    )
                )
            if dead:  # liveness keys expired: drop them from the index
                pipe = self._r.pipeline(transaction=False)
                pipe.srem(keys.WORKERS, *dead)
                pipe.delete(*(keys.worker_load(w) for w in dead))
                await pipe.execute()
            return records

    async def known_models(self) -> set[str]:
        async with _guard():
            return {str(m) for m in await self._r.smembers(keys.MODELS)}

    async def add_in_flight(self, worker_id: str, delta: int) -> None:
        async with _guard():
            await self._add(keys=[keys.worker_load(worker_id)], args=[delta])

    async def close(self) -> None:
        await self._r.aclose()


class RedisEventLog:
    """Streams: XADD returns only once Redis has the record (and with appendonly, its log)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis
        self._append_once = redis.register_script(_APPEND_ONCE)

    async def append(self, stream: str, record: Mapping[str, Any], key: str | None = None) -> str:
        data = json.dumps(dict(record))
        async with _guard():
            if key is None:
                return str(await self._r.xadd(keys.events(stream), {"data": data}))
            names = [keys.events(stream), keys.event_key(stream, key)]
            return str(await self._append_once(keys=names, args=[data, keys.EVENT_KEY_TTL_S]))

    async def read(
        self, stream: str, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        start = "-" if after is None else f"({after}"
        async with _guard():
            entries: Any = await self._r.xrange(keys.events(stream), min=start, count=limit)
        return await asyncio.to_thread(_decode, entries)

    async def close(self) -> None:
        await self._r.aclose()


def _decode(entries: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(str(entry_id), json.loads(fields["data"])) for entry_id, fields in entries]


class RedisKeyStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis

    async def create(
        self, name: str, models: list[str] | None, rpm: int | None, tpm: int | None
    ) -> tuple[str, ApiKey]:
        secret, record = new_key(name, models, rpm, tpm)
        async with _guard():
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(keys.API_KEYS, record.id, json.dumps(record.to_json()))
            pipe.set(keys.api_key_hash(record.digest), record.id)
            await pipe.execute()
        return secret, record

    async def list(self) -> list[ApiKey]:
        async with _guard():
            raw: Any = await self._r.hgetall(keys.API_KEYS)
        records = [ApiKey(**json.loads(doc)) for doc in raw.values()]
        return sorted(records, key=lambda k: k.created_at)

    async def revoke(self, key_id: str) -> bool:
        async with _guard():
            doc: Any = await self._r.hget(keys.API_KEYS, key_id)
            if doc is None:
                return False
            record = ApiKey(**json.loads(doc))
            if record.revoked_at is None:
                record.revoked_at = time.time()
                pipe = self._r.pipeline(transaction=True)
                pipe.hset(keys.API_KEYS, key_id, json.dumps(record.to_json()))
                pipe.delete(keys.api_key_hash(record.digest))
                await pipe.execute()
            return True

    async def lookup(self, secret: str) -> ApiKey | None:
        async with _guard():
            key_id: Any = await self._r.get(keys.api_key_hash(digest(secret)))
            if key_id is None:
                return None
            doc: Any = await self._r.hget(keys.API_KEYS, key_id)
        if doc is None:
            return None
        record = ApiKey(**json.loads(doc))
        return record if record.revoked_at is None else None

    async def any_keys(self) -> bool:
        async with _guard():
            return bool(await self._r.hlen(keys.API_KEYS))

    async def close(self) -> None:
        await self._r.aclose()


class RedisRateLimiter:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis
        self._take = redis.register_script(_TAKE)

    async def take(
        self, bucket: str, capacity: float, per_second: float, cost: float, require: float
    ) -> float:
        async with _guard():
            wait = await self._take(
                keys=[keys.bucket(bucket)],
                args=[capacity, per_second, cost, require, keys.BUCKET_TTL_S],
            )
        return float(wait)

    async def close(self) -> None:
        await self._r.aclose()
