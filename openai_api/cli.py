"""`corral api` / `python -m openai_api`: flags generated from `GatewaySettings`."""

from __future__ import annotations

import argparse
import logging

from openai_api.settings import GatewaySettings
from servekit.cliargs import add_settings_arguments, settings_from_args
from servekit.settings import is_loopback


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, GatewaySettings)


def run(args: argparse.Namespace) -> int:
    from openai_api.app import create_app
    from servekit import server
    from servekit.logs import configure_logging

    settings = settings_from_args(args, GatewaySettings)
    configure_logging(settings.log_level)
    if not (settings.require_keys or settings.api_keys or is_loopback(settings.host)):
        logging.getLogger("openai_api").warning(
            "the API on %s needs no key (no --require-keys): anyone who reaches it may use it",
            settings.host,
        )
    server.run(create_app(settings), settings.host, settings.port, log_level=settings.log_level)
    return 0
