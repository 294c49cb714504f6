"""Controller settings: read once, from `CORRAL_CONTROLLER_*` variables and the command line."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from controller.dispatch import POLICIES
from servekit.settings import (
    OneOf,
    ServiceSettings,
    allowed_hosts_field,
    control_secret_field,
    insecure_field,
    store_url_field,
)

ENV_PREFIX = "CORRAL_CONTROLLER_"


class ControllerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=21001, ge=0, le=65535, description="port to listen on")
    policy: Annotated[str, OneOf(POLICIES)] = Field(
        default="shortest_queue", description="how a worker is chosen among the live ones"
    )
    worker_ttl: float = Field(
        default=6.0, gt=0, description="seconds without a heartbeat before a worker is dropped"
    )
    store_url: str | None = store_url_field(
        ENV_PREFIX,
        "redis://host:port/db to share state with other controllers; unset: embedded",
    )
    control_secret: str | None = control_secret_field(ENV_PREFIX)
    allowed_hosts: list[str] = allowed_hosts_field()
    insecure: bool = insecure_field()
    allowed_worker_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="host a worker URL may point at ('*' allows any)",
        json_schema_extra={"flag": "--allowed-worker-host", "metavar": "HOST"},
    )
