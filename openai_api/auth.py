"""API keys and their limits: who may call, which models, how many requests and tokens.

Keys come from settings (static) and from the store (`corral keys create`, kept hashed). Whether
keys are required is explicit (`--require-keys`, or static keys given), never inferred from what
the store holds: a store that was flushed, evicted or is not the one `corral keys create` wrote
to leaves a gateway that requires keys closed (401), and one it cannot read answers 503.
Lookups are cached for
`cache_ttl` seconds, so a revoked key stops working within that time. Limits are token buckets
in the store: requests per minute are taken up front; tokens per minute are checked up front
and charged when the reply's usage is known (a request may overdraw; the next ones wait).
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._required = required or bool(static_keys)
        self._static = [k.encode() for k in static_keys]
        self._static_principal = Principal("static", None, static_rpm, static_tpm)
        self._keys = keys
        self._limiter = limiter
        self._ttl = cache_ttl
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._charges: set[asyncio.Task[None]] = set()

    async def authenticate(self, authorization: str | None) -> Principal:
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
        record = await self._lookup(token)
        if record is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        models = frozenset(record.models) if record.models is not None else None
        return Principal(record.id, models, record.rpm, record.tpm)

    async def admit(self, principal: Principal, model: str) -> None:
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
                f"{principal.key_id}:tpm", principal.tpm, principal.tpm / 60, 0, 1
            )
            if wait:
                raise RateLimited(
                    f"Rate limit reached for tokens: {principal.tpm} per minute. "
                    f"Please try again in {wait:.1f}s.",
                    retry_after=wait,
                )

    def charge(self, principal: Principal, tokens: int) -> None:
        """Count a finished request's tokens against its key, in the background."""
        if not principal.tpm or tokens <= 0:
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

    async def _lookup(self, token: str) -> ApiKey | None:
        hit = self._cache.get(token)
        if hit is not None and self._clock() < hit[0]:
            return hit[1]
        record = await self._keys.lookup(token)
        self._cache[token] = (self._clock() + self._ttl, record)
        self._cache.move_to_end(token)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return record
