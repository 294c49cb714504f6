"""What every service's settings class shares: the log level, strict fields, choice tables.

Each service has one `ServiceSettings` subclass with its own `env_prefix`
(`CORRAL_CONTROLLER_`, `CORRAL_WORKER_`, `CORRAL_API_`, `CORRAL_WEBUI_`); its command line is
generated from it (`servekit.cliargs`), so a flag, its environment variable, its default and
its help cannot drift apart.

Field metadata the command line reads, in `json_schema_extra`: `flag` (a flag name other than
`--field-name`, e.g. `--controller-url` for `controller_urls`), `metavar`, and `cli: False` for
a setting that has no flag (a secret: a command line is readable by every local user in `ps`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AliasChoices, Field, GetCoreSchemaHandler
from pydantic_core import core_schema
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error"]


class ServiceSettings(BaseSettings):
    # populate_by_name: aliased fields (store_url) still take their own name as a keyword
    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    log_level: LogLevel = Field(default="info", description="least severe messages logged")


@dataclass(frozen=True)
class OneOf:
    """`Annotated[str, OneOf(TABLE)]`: a setting that must name an entry of a table (backends,
    dispatch policies). It validates like a `Literal` of the table's keys, and the command line
    offers them as the flag's choices, so the table stays the only list of them."""

    values: tuple[str, ...]

    def __init__(self, values: Iterable[str]) -> None:
        object.__setattr__(self, "values", tuple(values))

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.literal_schema(list(self.values))


def store_url_field(env_prefix: str, description: str) -> Any:
    """The `store_url` setting: `<env_prefix>STORE_URL`, else the shared `CORRAL_STORE_URL`.

    Both names are spelled out because pydantic-settings does not apply `env_prefix` to a field
    that has a validation alias.
    """
    return Field(
        default=None,
        validation_alias=AliasChoices(f"{env_prefix}STORE_URL", "CORRAL_STORE_URL"),
        description=description,
    )


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def control_secret_field(env_prefix: str) -> Any:
    """The control secret: `<env_prefix>CONTROL_SECRET`, else the shared
    `CORRAL_CONTROL_SECRET`; never a flag, so it does not show in `ps` or `docker inspect`."""
    return Field(
        default=None,
        validation_alias=AliasChoices(f"{env_prefix}CONTROL_SECRET", "CORRAL_CONTROL_SECRET"),
        description="shared secret of the control plane (controllers, workers, gateways); "
        "environment only",
        json_schema_extra={"cli": False},
    )


def allowed_hosts_field() -> Any:
    return Field(
        default_factory=list,
        description="a name clients use in the Host header besides loopback and the listen "
        "address ('*': any; default on a wildcard address: any)",
        json_schema_extra={"flag": "--allowed-host", "metavar": "HOST"},
    )


def insecure_field() -> Any:
    return Field(
        default=False,
        description="listen beyond loopback without a control secret (anyone who can reach "
        "the port controls this service)",
    )


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ExposureRefused(SystemExit):
    """A service would listen beyond loopback with nothing guarding it."""


def refuse_open_exposure(service: str, host: str, secret: str | None, insecure: bool) -> None:
    """Closed by default: beyond loopback, a control-plane service needs the secret."""
    if is_loopback(host) or secret:
        return
    if insecure:
        import logging

        logging.getLogger(__name__).warning(
            "%s listens on %s with NO control secret (--insecure): anyone who can reach it "
            "controls it",
            service,
            host,
        )
        return
    raise ExposureRefused(
        f"corral {service}: refusing to listen on {host} without a control secret. Set "
        "CORRAL_CONTROL_SECRET (the same on every controller, worker and gateway), or pass "
        "--insecure to run open anyway."
    )
