"""Every Redis key Corral uses, and their lifetimes: one place to read the whole data model.

corral:workers                    set     ids of registered workers (index; stale ids pruned
                                          when their liveness key is found gone)
corral:worker:{id}                string  registration JSON; TTL = the worker TTL (liveness)
corral:worker:{id}:load           hash    in_flight, queued, healthy, dispatched_total
corral:models                     set     every model ever registered (404 vs 503)
corral:events:{stream}            stream  append-only records (votes, conversations)
corral:events:{stream}:key:{key}  string  id of the record appended with this idempotency key
                                          (TTL 1 day: a retried write within it stores nothing)
corral:apikeys                    hash    key id -> API key record JSON (secret stored hashed)
corral:apikey-hash:{sha256}       string  key id, for lookup by presented key
corral:bucket:{name}              hash    level, updated_at: a token bucket (TTL: until full
                                          again, at least 2 windows)
"""

from __future__ import annotations

PREFIX = "corral"

WORKERS = f"{PREFIX}:workers"
MODELS = f"{PREFIX}:models"
API_KEYS = f"{PREFIX}:apikeys"

# A full bucket untouched for this long expires (it would be full again anyway), which keeps
# Redis clean; a bucket below full, in debt too, lives until it has refilled.
BUCKET_TTL_S = 120


def worker(worker_id: str) -> str:
    return f"{PREFIX}:worker:{worker_id}"


def worker_load(worker_id: str) -> str:
    return f"{PREFIX}:worker:{worker_id}:load"


def events(stream: str) -> str:
    return f"{PREFIX}:events:{stream}"


# How long an idempotency key remembers its record: far longer than any retry of a write.
EVENT_KEY_TTL_S = 86_400


def event_key(stream: str, key: str) -> str:
    return f"{PREFIX}:events:{stream}:key:{key}"


def api_key_hash(digest: str) -> str:
    return f"{PREFIX}:apikey-hash:{digest}"


def bucket(name: str) -> str:
    return f"{PREFIX}:bucket:{name}"
