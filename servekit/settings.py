"""What every service's settings class shares: the log level, strict fields, choice tables.

Each service has one `ServiceSettings` subclass with its own `env_prefix`
(`CORRAL_CONTROLLER_`, `CORRAL_WORKER_`, `CORRAL_API_`, `CORRAL_WEBUI_`); its command line is
generated from it (`servekit.cliargs`), so a flag, its environment variable, its default and
its help cannot drift apart.

Field metadata the command line reads, in `json_schema_extra`: `flag` (a flag name other than
`--field-name`, e.g. `--controller-url` for `controller_urls`) and `metavar`.
"""

from __future__ import annotations

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
