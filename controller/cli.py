"""`corral controller` / `python -m controller` flags."""

from __future__ import annotations

import argparse

from controller.settings import ControllerSettings
from servekit.cliargs import add_logging_flag, configure_logging, overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--host")
    a("--port", type=int)
    a("--policy", choices=["shortest_queue", "lottery", "round_robin"])
    a("--worker-ttl", type=float, help="seconds without a heartbeat before a worker is dropped")
    a("--store-url", help="redis://host:port/db to share state (default: embedded)")
    a("--control-secret", help="shared secret workers and gateways must present")
    a(
        "--allowed-worker-host",
        dest="allowed_worker_hosts",
        action="append",
        help="host a worker URL may point at (repeatable; '*' allows any)",
    )
    add_logging_flag(parser)


def run(args: argparse.Namespace) -> int:
    from controller.app import create_app
    from servekit import server

    configure_logging(args.log_level)
    settings = ControllerSettings(**overrides(args, ControllerSettings))
    server.run(create_app(settings), settings.host, settings.port, log_level=args.log_level)
    return 0
