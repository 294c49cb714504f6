"""Every service's settings class is its command line: each field is a flag and a
`CORRAL_<SERVICE>_<NAME>` environment variable, and both reach the settings object."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from controller import cli as controller_cli
from controller.dispatch import POLICIES
from controller.settings import ControllerSettings
from corral.cli import build_parser
from model_worker import cli as worker_cli
from model_worker.backends import BACKENDS
from model_worker.settings import WorkerSettings
from openai_api import cli as api_cli
from openai_api.settings import GatewaySettings
from servekit.cliargs import settings_from_args
from servekit.settings import ServiceSettings
from webui import cli as webui_cli
from webui.settings import WebUISettings

AddArguments = Callable[[argparse.ArgumentParser], None]
SERVICES: list[tuple[type[ServiceSettings], str, AddArguments]] = [
    (ControllerSettings, "CORRAL_CONTROLLER_", controller_cli.add_arguments),
    (WorkerSettings, "CORRAL_WORKER_", worker_cli.add_arguments),
    (GatewaySettings, "CORRAL_API_", api_cli.add_arguments),
    (WebUISettings, "CORRAL_WEBUI_", webui_cli.add_arguments),
]
FIELDS = [
    pytest.param(cls, prefix, add, name, id=f"{prefix}{name.upper()}")
    for cls, prefix, add in SERVICES
    for name in cls.model_fields
]

# Flags users and scripts already use (README, docker-compose, docs): their spelling stays.
KNOWN_FLAGS: dict[type[ServiceSettings], list[str]] = {
    ControllerSettings: ["--host", "--port", "--policy", "--worker-ttl", "--store-url",
                         "--allowed-worker-host", "--log-level"],
    WorkerSettings: ["--model-path", "--model-name", "--backend", "--conv-template", "--host",
                     "--port", "--worker-address", "--controller-url",
                     "--capacity", "--max-queued", "--dtype", "--threads", "--max-model-len",
                     "--tensor-parallel-size", "--gpu-memory-utilization", "--quantization",
                     "--enable-lora", "--lora", "--max-num-seqs", "--runner", "--enforce-eager",
                     "--no-enforce-eager", "--log-level"],
    GatewaySettings: ["--host", "--port", "--controller-url", "--api-key",
                      "--request-timeout", "--max-retries", "--store-url", "--max-body-bytes",
                      "--max-messages", "--log-level"],
    WebUISettings: ["--host", "--port", "--api-url", "--api-key", "--store-url",
                    "--arena-weight", "--max-input-chars", "--max-turns", "--max-tokens",
                    "--session-rate-limit", "--ip-rate-limit", "--startup-timeout",
                    "--wait-for-model", "--log-level"],
}  # fmt: skip


SECRETS = {"control_secret"}


def test_the_control_secret_is_shared_and_never_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_CONTROL_SECRET", "shared")
    for cls, prefix, add in SERVICES[:3]:
        assert _read(cls(), "control_secret") == "shared"
        monkeypatch.setenv(f"{prefix}CONTROL_SECRET", "own")
        assert _read(cls(), "control_secret") == "own"
        monkeypatch.delenv(f"{prefix}CONTROL_SECRET")
        with pytest.raises(SystemExit):
            _parser(add).parse_args(["--control-secret", "x"])


def _parser(add: AddArguments) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add(parser)
    return parser


def _action(parser: argparse.ArgumentParser, dest: str) -> argparse.Action:
    actions = [a for a in parser._actions if a.dest == dest]
    assert len(actions) == 1, f"{dest}: {len(actions)} flags"
    return actions[0]


def _read(settings: ServiceSettings, name: str) -> Any:
    value = getattr(settings, name)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _candidates(cls: type[ServiceSettings], name: str) -> list[Any]:
    """Values of the field's type, most of which its constraints accept."""
    schema = cls.model_json_schema(by_alias=False)["properties"][name]
    kinds = [schema, *schema.get("anyOf", [])]
    enum = [v for k in kinds for v in k.get("enum", [])]
    types = {k.get("type") for k in kinds}
    if enum:
        return enum
    if "boolean" in types:
        return [True, False]
    if "integer" in types:
        return [3, 17, 2048, 70_000]
    if "number" in types:
        return [0.5, 1.5, 30.0]
    if "array" in types:
        return [["x=1", "y=2"]]
    if "object" in types:
        return [{"m1": 2.0, "m2": 0.0}, {"m1": "a text", "m2": "another"}]
    return ["sample-value", "SAMPLE_VALUE"]  # the second for names (environment variables)


def _sample(cls: type[ServiceSettings], name: str) -> Any:
    """A value the field accepts that differs from its default."""
    default = _read(cls(), name)
    for value in _candidates(cls, name):
        try:
            if _read(cls(**{name: value}), name) != default:
                return value
        except ValidationError:
            continue
    raise AssertionError(f"no sample value for {cls.__name__}.{name}")


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _argv(flag: str, value: Any) -> list[str]:
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag.removeprefix("--")]
    if isinstance(value, list):
        return [part for item in value for part in (flag, str(item))]
    if isinstance(value, dict):
        return [part for k, v in value.items() for part in (flag, f"{k}={v}")]
    return [flag, str(value)]


@pytest.fixture(autouse=True)
def _no_service_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: the test session's CORRAL_STORE_URL is not part of it."""
    import os

    for var in list(os.environ):
        if var.startswith("CORRAL_") and var not in ("CORRAL_HOME", "CORRAL_FIXTURES"):
            monkeypatch.delenv(var)


@pytest.mark.parametrize(("cls", "prefix", "add", "name"), FIELDS)
def test_every_setting_is_a_flag_and_an_environment_variable(
    cls: type[ServiceSettings],
    prefix: str,
    add: AddArguments,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = _sample(cls, name)
    monkeypatch.setenv(f"{prefix}{name.upper()}", _env_text(value))
    assert _read(cls(), name) == value, "the environment variable is ignored"
    monkeypatch.delenv(f"{prefix}{name.upper()}")

    parser = _parser(add)
    if name in SECRETS:  # environment only: a command line is readable by everyone in `ps`
        assert not [a for a in parser._actions if a.dest == name]
        return
    action = _action(parser, name)
    flag = action.option_strings[0]
    settings = settings_from_args(parser.parse_args(_argv(flag, value)), cls)
    assert _read(settings, name) == value, f"{flag} does not reach the settings"
    description = cls.model_fields[name].description
    assert description and action.help and action.help.startswith(description)


@pytest.mark.parametrize(("cls", "prefix", "add"), SERVICES)
def test_a_flag_beats_the_environment_and_nothing_given_keeps_the_default(
    cls: type[ServiceSettings], prefix: str, add: AddArguments, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"{prefix}PORT", "1111")
    parser = _parser(add)
    assert settings_from_args(parser.parse_args(["--port", "2222"]), cls).port == 2222
    assert settings_from_args(parser.parse_args([]), cls).port == 1111
    monkeypatch.delenv(f"{prefix}PORT")
    assert settings_from_args(parser.parse_args([]), cls) == cls()


@pytest.mark.parametrize(("cls", "prefix", "add"), SERVICES)
def test_the_flags_users_know_keep_their_spelling(
    cls: type[ServiceSettings], prefix: str, add: AddArguments
) -> None:
    parser = _parser(add)
    known = {flag for action in parser._actions for flag in action.option_strings}
    assert set(KNOWN_FLAGS[cls]) <= known


@pytest.mark.parametrize(
    "cls", [ControllerSettings, GatewaySettings, WebUISettings], ids=lambda c: c.__name__
)
def test_the_shared_store_url_is_the_fallback(
    cls: type[ServiceSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = next(p for c, p, _ in SERVICES if c is cls)
    monkeypatch.setenv("CORRAL_STORE_URL", "redis://shared:6379/0")
    assert _read(cls(), "store_url") == "redis://shared:6379/0"
    monkeypatch.setenv(f"{prefix}STORE_URL", "redis://own:6379/0")
    assert _read(cls(), "store_url") == "redis://own:6379/0"


def test_choices_come_from_the_tables() -> None:
    worker = _action(_parser(worker_cli.add_arguments), "backend")
    assert worker.choices == ["auto", *BACKENDS]
    controller = _action(_parser(controller_cli.add_arguments), "policy")
    assert controller.choices == list(POLICIES)
    up = build_parser()._subparsers._group_actions[0].choices["up"]  # type: ignore[union-attr]
    # `corral up` starts local models; an external server is a worker of its own
    assert list(_action(up, "backend").choices or ()) == ["auto", "hf", "vllm", "llamacpp"]
    with pytest.raises(ValidationError, match="'auto', 'hf', 'vllm', 'llamacpp' or 'openai'"):
        WorkerSettings(backend="nope")
    with pytest.raises(ValidationError):
        ControllerSettings(policy="nope")


def test_pairs_and_bad_pairs() -> None:
    parser = _parser(webui_cli.add_arguments)
    args = parser.parse_args(["--arena-weight", "org/model=2.5", "--arena-weight", "b=0"])
    assert settings_from_args(args, WebUISettings).arena_weights == {"org/model": 2.5, "b": 0.0}
    with pytest.raises(argparse.ArgumentError, match="expected MODEL=WEIGHT"):
        parser.parse_args(["--arena-weight", "no-equals-sign"])
