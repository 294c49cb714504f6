"""API key secrets: generated here, stored only as digests."""

from __future__ import annotations

import hashlib
import secrets
import time

from store.base import ApiKey

SECRET_PREFIX = "sk-corral-"


def new_key(
    name: str, models: list[str] | None, rpm: int | None, tpm: int | None
) -> tuple[str, ApiKey]:
    secret = SECRET_PREFIX + secrets.token_urlsafe(24)
    record = ApiKey(
        id=f"key_{secrets.token_hex(6)}",
        name=name,
        prefix=secret[: len(SECRET_PREFIX) + 4],
        digest=digest(secret),
        models=models,
        rpm=rpm,
        tpm=tpm,
        created_at=time.time(),
    )
    return secret, record


def digest(secret: str) -> str:
    """SHA-256 suffices: the secrets are 192 random bits, not passwords to stretch."""
    return hashlib.sha256(secret.encode()).hexdigest()
