"""Gateway settings: read once, from `CORRAL_API_*` variables and the command line."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from protocol.limits import InputLimitSettings
from servekit.settings import (
    ServiceSettings,
    allowed_hosts_field,
    control_secret_field,
    store_url_field,
)

ENV_PREFIX = "CORRAL_API_"


class GatewaySettings(ServiceSettings, InputLimitSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="port to listen on")
    workers: int = Field(
        default=1,
        ge=1,
        le=256,
        description="gateway processes serving this port; they share keys and rate limits "
        "through the store (Redis, or a SQLite file on this host)",
    )
    controller_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:21001"],
        description="controller base URL (the gateway fails over between them)",
        json_schema_extra={"flag": "--controller-url", "metavar": "URL"},
    )
    control_secret: str | None = control_secret_field(ENV_PREFIX)
    allowed_hosts: list[str] = allowed_hosts_field()
    require_keys: bool = Field(
        default=False,
        description="every request needs an API key (static or from `corral keys create`); "
        "when the key store cannot be read the gateway answers 503. Off: the API is open "
        "(static --api-key values turn it on)",
    )
    store_url: str | None = store_url_field(
        ENV_PREFIX,
        "redis://... shares API keys and rate-limit buckets between gateways; unset: embedded",
    )
    api_keys: list[str] = Field(
        default_factory=list,
        description="accepted static API key",
        json_schema_extra={"flag": "--api-key", "metavar": "KEY"},
    )
    static_key_rpm: int | None = Field(
        default=None, ge=1, description="requests per minute for each static key"
    )
    static_key_tpm: int | None = Field(
        default=None, ge=1, description="tokens per minute for each static key"
    )
    key_cache_ttl: float = Field(default=2.0, ge=0, description="seconds a key lookup is reused")
    request_timeout: float = Field(
        default=600.0, gt=0, description="seconds to wait for a worker's reply (then 504)"
    )
    connect_timeout: float = Field(
        default=2.0, gt=0, description="seconds to connect to a worker or a controller"
    )
    controller_timeout: float = Field(
        default=5.0, gt=0, description="seconds for a controller's answer"
    )
    max_retries: int = Field(
        default=2,
        ge=0,
        le=5,
        description="other workers tried when one fails before its first byte",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="larger request bodies get 413"
    )
    max_messages: int = Field(
        default=512, ge=1, description="chat requests with more messages get 400"
    )
    write_idle_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds a client may stop reading a stream before it is dropped (and "
        "its generation aborted)",
    )
    stream_idle_timeout: float = Field(
        default=60.0,
        gt=0,
        description="seconds a worker may stay silent on a stream (before its headers or "
        "between chunks) before the stream fails",
    )
    max_streams_per_key: int = Field(
        default=128,
        ge=1,
        description="streams open at once per API key (on an open gateway: per client "
        "address); more get 429",
    )
    failed_auth_per_minute: int = Field(
        default=30,
        ge=1,
        description="failed authentications per client address and minute before that "
        "address gets 429",
    )
