"""API keys and their limits: who may call, which models, how many requests and tokens.

Keys come from settings (static) and from the store (`corral keys create`, kept hashed). Whether
keys are required is explicit (`--require-keys`, or static keys given), never inferred from what
the store holds: a store that was flushed, evicted or is not the one `corral keys create` wrote
to leaves a gateway that requires keys closed (401), and one it cannot read answers 503.
Lookups are cached for
`cache_ttl` seconds, so a revoked key stops working within that time. Limits are token buckets
in the store: requests per minute are taken up front; tokens per minute are reserved up front
(the most the request may cost: its input and every choice's `max_tokens`) and settled when
the reply's usage is known, the difference refunded. A request may overdraw (the next ones
wait); a stream cut short is charged what it relayed, a client that left before a
non-streaming reply keeps its whole reservation.

An address whose keys fail authentication too often gets 429 for a while instead of another
store lookup (keys in the cache still work from it), and failed lookups are not cached, so
random keys cost a bounded number of store lookups and cannot evict good keys from the cache.
`StreamCaps` bounds the streams one key (on an open gateway: one client address) holds open.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from protocol.errors import AuthenticationFailed, ModelNotFound, RateLimited
from store import ApiKey, KeyStore, RateLimiter

logger = logging.getLogger(__name__)

_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Principal:
    key_id: str
    models: frozenset[str] | None = None  # None: every model
    rpm: int | None = None
    tpm: int | None = None

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


OPEN = Principal("open")


class Gatekeeper:
    def __init__(
        self,
        required: bool,
        static_keys: list[str],
        keys: KeyStore,
        limiter: RateLimiter,
        *,
        static_rpm: int | None = None,
        static_tpm: int | None = None,
        cache_ttl: float = 2.0,
        failed_auth_per_minute: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._required = required or bool(static_keys)
        self._static = [k.encode() for k in static_keys]
        self._static_principal = Principal("static", None, static_rpm, static_tpm)
        self._keys = keys
        self._limiter = limiter
        self._ttl = cache_ttl
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, ApiKey]] = OrderedDict()
        self._charges: set[asyncio.Task[None]] = set()
        self._failures = FailureThrottle(failed_auth_per_minute, clock)

    async def authenticate(self, authorization: str | None, client: str = "") -> Principal:
        """The caller's principal; `client` (its address) is throttled after failures."""
        if not self._required:
            return OPEN
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'."
            )
        token = token.strip()
        if any(hmac.compare_digest(token.encode(), k) for k in self._static):
            return self._static_principal
        record = await self._lookup(token, client)
        if record is None:
            self._failures.failed(client)
            raise AuthenticationFailed("Incorrect API key provided.")
        models = frozenset(record.models) if record.models is not None else None
        return Principal(record.id, models, record.rpm, record.tpm)

    async def admit(self, principal: Principal, model: str, reserve: int = 0) -> None:
        """Model allowlist (404 as OpenAI does for models a key cannot see), then limits."""
        if not principal.may_use(model):
            raise ModelNotFound(
                f"The model {model!r} does not exist or you do not have access to it.",
                param="model",
            )
        if principal.rpm:
            wait = await self._limiter.take(
                f"{principal.key_id}:rpm", principal.rpm, principal.rpm / 60, 1, 1
            )
            if wait:
                raise RateLimited(
                    f"Rate limit reached for requests: {principal.rpm} per minute. "
                    f"Please try again in {wait:.1f}s.",
                    retry_after=wait,
                )
        if principal.tpm:
            wait = await self._limiter.take(
                f"{principal.key_id}:tpm", principal.tpm, principal.tpm / 60, max(0, reserve), 1
            )
            if wait:
                raise RateLimited(
                    f"Rate limit reached for tokens: {principal.tpm} per minute. "
                    f"Please try again in {wait:.1f}s.",
                    retry_after=wait,
                )

    def charge(self, principal: Principal, tokens: int) -> None:
        """Count tokens against a key (negative: a refund of a reservation), in the background."""
        if not principal.tpm or tokens == 0:
            return
        task = asyncio.create_task(self._charge(principal, tokens))
        self._charges.add(task)
        task.add_done_callback(self._charges.discard)

    async def _charge(self, principal: Principal, tokens: int) -> None:
        tpm = principal.tpm or 0
        try:
            await self._limiter.take(
                f"{principal.key_id}:tpm", tpm, tpm / 60, tokens, float("-inf")
            )
        except Exception as exc:  # the store is down: this request's tokens go uncounted
            logger.warning("could not charge %d tokens to %s: %s", tokens, principal.key_id, exc)

    async def drain(self) -> None:
        if self._charges:
            await asyncio.wait(self._charges, timeout=2.0)

    async def probe(self) -> None:
        """Reach the key store (raises StoreUnavailable when it is down)."""
        await self._keys.any_keys()

    async def _lookup(self, token: str, client: str) -> ApiKey | None:
        """A cached key, else (unless `client` failed too often: 429) the store's answer."""
        hit = self._cache.get(token)
        if hit is not None and self._clock() < hit[0]:
            return hit[1]
        self._failures.check(client)
        record = await self._keys.lookup(token)
        if record is None:
            return None  # not cached: random keys must not evict good ones
        self._cache[token] = (self._clock() + self._ttl, record)
        self._cache.move_to_end(token)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return record


class FailureThrottle:
    """Failed authentications per client address, as token buckets of `per_minute`: an address
    with an empty bucket is refused (429) without a key lookup. At most `max_clients`
    addresses are tracked (the least recently failed are forgotten)."""

    def __init__(
        self, per_minute: int, clock: Callable[[], float], max_clients: int = _CACHE_SIZE
    ) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60
        self._clock = clock
        self._max = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, client: str) -> float:
        level, updated = self._buckets.get(client, (self._capacity, self._clock()))
        return min(self._capacity, level + (self._clock() - updated) * self._rate)

    def check(self, client: str) -> None:
        if client not in self._buckets:
            return
        level = self._level(client)
        if level < 1:
            raise RateLimited(
                "Too many requests with a missing or incorrect API key from this address. "
                f"Please try again in {(1 - level) / self._rate:.1f}s.",
                retry_after=(1 - level) / self._rate,
            )

    def failed(self, client: str) -> None:
        self._buckets[client] = (self._level(client) - 1, self._clock())
        self._buckets.move_to_end(client)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


class StreamCaps:
    """Concurrent streams per key (on an open gateway: per client address): one over the cap
    is refused with 429. `open` returns the release to call once when the stream ends."""

    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._open: dict[str, int] = {}

    def open(self, principal: Principal, client: str) -> Callable[[], None]:
        holder = f"client:{client}" if principal is OPEN else f"key:{principal.key_id}"
        count = self._open.get(holder, 0)
        if count >= self._per_key:
            raise RateLimited(
                f"Too many concurrent streams: at most {self._per_key} per "
                f"{'client' if principal is OPEN else 'API key'}. Please finish one first.",
                retry_after=1,
            )
        self._open[holder] = count + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._open[holder] - 1
            if left:
                self._open[holder] = left
            else:
                del self._open[holder]

        return release

    def count(self) -> int:
        return sum(self._open.values())
