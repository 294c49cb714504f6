"""`corral controller` / `python -m controller`: flags generated from `ControllerSettings`."""

from __future__ import annotations

import argparse

from controller.settings import ControllerSettings
from servekit.cliargs import add_settings_arguments, settings_from_args
from servekit.settings import refuse_open_exposure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, ControllerSettings)


def run(args: argparse.Namespace) -> int:
    from controller.app import create_app
    from servekit import server
    from servekit.logs import configure_logging

    settings = settings_from_args(args, ControllerSettings)
    configure_logging(settings.log_level)
    refuse_open_exposure("controller", settings.host, settings.control_secret, settings.insecure)
    server.run(create_app(settings), settings.host, settings.port, log_level=settings.log_level)
    return 0
