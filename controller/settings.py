"""Controller settings: read once, from `CORRAL_CONTROLLER_*` variables and the command line."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from controller.dispatch import Policy


class ControllerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRAL_CONTROLLER_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=21001, ge=0, le=65535)
    policy: Policy = "shortest_queue"
    worker_ttl: float = Field(default=6.0, gt=0, description="seconds without a heartbeat")
    store_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("store_url", "CORRAL_STORE_URL"),
        description="redis://host:port/db to share state with other controllers",
    )
    control_secret: str | None = None
    allowed_worker_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="hosts a worker URL may point at; ['*'] allows any",
    )
