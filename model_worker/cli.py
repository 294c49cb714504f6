"""`corral worker` / `python -m model_worker`: flags generated from `WorkerSettings`."""

from __future__ import annotations

import argparse
import sys

from model_worker.settings import WorkerSettings
from servekit.cliargs import add_settings_arguments, settings_from_args
from servekit.settings import refuse_open_exposure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, WorkerSettings)


def run(args: argparse.Namespace) -> int:
    from model_worker.app import create_app, leave_controller
    from servekit import server
    from servekit.logs import configure_logging

    settings = settings_from_args(args, WorkerSettings)
    configure_logging(settings.log_level)
    refuse_open_exposure("worker", settings.host, settings.control_secret, settings.insecure)
    # Backends decode in threads that hold the GIL between torch ops; the default 5 ms switch
    # interval then delays the event loop (and every streamed token) by up to 5 ms a turn.
    sys.setswitchinterval(0.0005)
    app = create_app(settings)
    server.run(
        app,
        settings.host,
        settings.port,
        on_shutdown_begin=lambda: leave_controller(app),
        log_level=settings.log_level,
    )
    return 0
