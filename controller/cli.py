"""`corral controller` / `python -m controller`: flags generated from `ControllerSettings`."""

from __future__ import annotations

import argparse

from controller.settings import ControllerSettings
from servekit.cliargs import add_settings_arguments, settings_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, ControllerSettings)


def run(args: argparse.Namespace) -> int:
    from controller.app import create_app
    from servekit import server
    from servekit.logs import configure_logging

    settings = settings_from_args(args, ControllerSettings)
    configure_logging(settings.log_level)
    server.run(create_app(settings), settings.host, settings.port, log_level=settings.log_level)
    return 0
