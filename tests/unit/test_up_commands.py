"""`corral up` starts each service with flags that service's own command line accepts."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from controller import cli as controller_cli
from controller.settings import ControllerSettings
from corral.cli import build_parser
from corral.up import service_commands
from model_worker import cli as worker_cli
from model_worker.settings import WorkerSettings
from openai_api import cli as api_cli
from openai_api.settings import GatewaySettings
from servekit.cliargs import settings_from_args
from servekit.settings import ServiceSettings
from webui import cli as webui_cli
from webui.settings import WebUISettings

PARSERS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], type[ServiceSettings]]] = {
    "controller": (controller_cli.add_arguments, ControllerSettings),
    "model_worker": (worker_cli.add_arguments, WorkerSettings),
    "openai_api": (api_cli.add_arguments, GatewaySettings),
    "webui": (webui_cli.add_arguments, WebUISettings),
}


def _settings(argv: list[str]) -> ServiceSettings:
    add, cls = PARSERS[argv[0]]
    parser = argparse.ArgumentParser(exit_on_error=False)
    add(parser)
    return settings_from_args(parser.parse_args(argv[1:]), cls)


def test_every_child_gets_flags_its_service_accepts() -> None:
    args = build_parser().parse_args(
        ["up", "--model", "smollm2", "--model", "/m/vicuna-7b", "--store-url", "redis://h:1/0",
         "--backend", "hf", "--log-level", "debug", "--api-port", "9000"]
    )  # fmt: skip
    commands = dict(service_commands(args, args.models, ["smollm2", "vicuna-7b"]))
    assert list(commands) == ["controller", "worker smollm2", "worker vicuna-7b", "api", "webui"]
    settings = {name: _settings(argv) for name, argv in commands.items()}
    assert all(s.log_level == "debug" for s in settings.values())

    controller = settings["controller"]
    assert isinstance(controller, ControllerSettings)
    assert (controller.port, controller.store_url) == (21001, "redis://h:1/0")
    second = settings["worker vicuna-7b"]
    assert isinstance(second, WorkerSettings)
    assert (second.model_path, second.model_name, second.port) == (
        "/m/vicuna-7b",
        "vicuna-7b",
        21003,
    )
    assert second.backend == "hf" and second.controller_urls == ["http://127.0.0.1:21001"]
    api = settings["api"]
    assert isinstance(api, GatewaySettings) and (api.port, api.store_url) == (9000, "redis://h:1/0")
    webui = settings["webui"]
    assert isinstance(webui, WebUISettings)
    assert webui.api_url == "http://127.0.0.1:9000/v1"
    assert webui.wait_for_models == ["smollm2", "vicuna-7b"]


def test_no_webui_and_the_embedded_store() -> None:
    args = build_parser().parse_args(["up", "--no-webui"])
    commands = dict(service_commands(args, ["smollm2"], ["smollm2"]))
    assert "webui" not in commands
    assert "--store-url" not in commands["controller"] + commands["api"]


def test_only_the_gateway_and_the_web_ui_take_host() -> None:
    """`corral up --host 0.0.0.0` (the Dockerfile's command): the control plane stays on
    loopback, so the workers' URLs are ones the controller accepts."""
    args = build_parser().parse_args(["up", "--host", "0.0.0.0", "--workers", "2"])
    commands = dict(service_commands(args, ["smollm2"], ["smollm2"]))
    assert list(commands) == [
        "controller",
        "worker smollm2 #1",
        "worker smollm2 #2",
        "api",
        "webui",
    ]
    settings = {name: _settings(argv) for name, argv in commands.items()}
    for name in ("controller", "worker smollm2 #1", "worker smollm2 #2"):
        assert settings[name].model_dump()["host"] == "127.0.0.1", name
    for name in ("api", "webui"):
        assert settings[name].model_dump()["host"] == "0.0.0.0", name
    workers = [settings["worker smollm2 #1"], settings["worker smollm2 #2"]]
    assert [w.address() for w in workers if isinstance(w, WorkerSettings)] == [
        "http://127.0.0.1:21002",
        "http://127.0.0.1:21003",
    ]
    webui = settings["webui"]
    assert isinstance(webui, WebUISettings) and webui.api_url == "http://127.0.0.1:8000/v1"


def test_no_secret_on_any_command_line() -> None:
    args = build_parser().parse_args(["up"])
    for _, argv in service_commands(args, ["smollm2"], ["smollm2"]):
        assert not [a for a in argv if "secret" in a.lower()]
