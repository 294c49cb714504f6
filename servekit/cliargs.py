"""A service's command line, generated from its settings class: one source for every flag.

Each settings field becomes a flag: `--field-name` (or the field's `flag`), its description as
help with the default and environment variable, choices from a `Literal` or a `OneOf` table,
`--x/--no-x` for a bool, a repeatable flag for a list, and a repeatable `KEY=VALUE` flag for a
dict; a field marked `cli: False` (a secret) has no flag. A flag left out stays None, so the
settings class falls back to its environment variable, then its default: flags beat the
environment, which beats defaults.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from servekit.settings import OneOf, ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def add_settings_arguments(
    parser: argparse.ArgumentParser,
    settings_cls: type[ServiceSettings],
    *,
    only: Collection[str] | None = None,
    flags: Mapping[str, str] | None = None,
) -> None:
    """A flag for every field of `settings_cls` (or the fields in `only`); `flags` renames some
    for this parser alone (`corral leaderboard --seed`)."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    # the service's own settings first, the shared ones (--log-level) last
    fields = sorted(settings_cls.model_fields.items(), key=lambda f: f[0] in _SHARED)
    for name, field in fields:
        if only is not None and name not in only:
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("cli") is False:
            continue  # a secret: environment only
        flag = (flags or {}).get(name) or str(extra.get("flag") or _flag_name(name))
        metavar = str(extra.get("metavar") or flag.removeprefix("--").replace("-", "_").upper())
        kwargs = _argument(field, metavar)
        kwargs["help"] = _help(field, _env_names(field, prefix + name), kwargs.get("action"))
        parser.add_argument(flag, dest=name, default=None, **kwargs)


def settings_from_args(args: argparse.Namespace, settings_cls: type[S]) -> S:
    """The settings, with the flags the user gave over the environment and the defaults."""
    given: dict[str, Any] = {}
    for name, field in settings_cls.model_fields.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if typing.get_origin(_plain(field.annotation)) is dict:
            value = dict(value)  # repeated KEY=VALUE pairs; a repeated key keeps its last value
        given[name] = value
    return settings_cls(**given)


_SHARED = set(ServiceSettings.model_fields)


def _env_names(field: FieldInfo, prefixed: str) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [c.upper() for c in alias.choices if isinstance(c, str)]
    return [prefixed.upper()]


def _flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _plain(annotation: Any) -> Any:
    """`X | None` -> X, and `Annotated[X, ...]` -> X."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _plain(args[0])
    return annotation


def _argument(field: FieldInfo, metavar: str) -> dict[str, Any]:
    annotation = _plain(field.annotation)
    origin = typing.get_origin(annotation)
    kwargs: dict[str, Any] = {}
    if annotation is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif origin is list:
        kwargs.update(action="append", **_scalar(typing.get_args(annotation)[0], field))
    elif origin is dict:
        value_type = typing.get_args(annotation)[1]  # keys are str
        convert = _scalar(value_type, field).get("type", str)
        kwargs.update(action="append", type=_pair(convert, metavar))
    else:
        kwargs.update(_scalar(annotation, field))
    if "choices" not in kwargs and kwargs.get("action") is not argparse.BooleanOptionalAction:
        kwargs["metavar"] = metavar
    return kwargs


def _scalar(annotation: Any, field: FieldInfo) -> dict[str, Any]:
    annotation = _plain(annotation)
    choices = [m.values for m in field.metadata if isinstance(m, OneOf)]
    if choices:
        return {"choices": list(choices[0])}
    if typing.get_origin(annotation) is Literal:
        return {"choices": list(typing.get_args(annotation))}
    if annotation in (int, float):
        return {"type": annotation}
    if annotation in (str, SecretStr):
        return {}
    raise TypeError(f"no command-line form for a setting of type {annotation!r}")


def _pair(convert: Callable[[str], Any], metavar: str) -> Callable[[str], tuple[str, Any]]:
    def parse(text: str) -> tuple[str, Any]:
        key, sep, value = text.rpartition("=")
        try:
            if not sep or not key:
                raise ValueError
            return key, convert(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {metavar}, got {text!r}") from None

    return parse


def _help(field: FieldInfo, env: list[str], action: Any) -> str:
    notes = []
    if action == "append":
        notes.append("repeatable")
    default = _default(field)
    if default not in (None, "", [], {}):
        if isinstance(default, list):
            default = ", ".join(str(v) for v in default)
        notes.append(f"default: {default}")
    notes.append(f"env {' or '.join(env)}")
    help_text = field.description or ""
    return f"{help_text} ({'; '.join(notes)})".strip().replace("%", "%%")


def _default(field: FieldInfo) -> Any:
    if field.default is not PydanticUndefined:
        return field.default
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None
