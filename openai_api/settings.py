"""Gateway settings: read once, from `CORRAL_API_*` variables and the command line."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRAL_API_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    controller_urls: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:21001"])
    control_secret: str | None = None
    store_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("store_url", "CORRAL_STORE_URL"),
        description="redis://... shares API keys and rate-limit buckets between gateways",
    )
    api_keys: list[str] = Field(default_factory=list, description="static keys")
    static_key_rpm: int | None = Field(default=None, ge=1)
    static_key_tpm: int | None = Field(default=None, ge=1)
    key_cache_ttl: float = Field(default=2.0, ge=0, description="seconds a key lookup is reused")
    request_timeout: float = Field(default=600.0, gt=0, description="seconds to a worker's reply")
    connect_timeout: float = Field(default=2.0, gt=0)
    controller_timeout: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=5, description="other workers tried first-byte")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_messages: int = Field(default=512, ge=1)
