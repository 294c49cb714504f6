"""`corral api` / `python -m openai_api` flags."""

from __future__ import annotations

import argparse

from openai_api.settings import GatewaySettings
from servekit.cliargs import add_logging_flag, configure_logging, overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--host")
    a("--port", type=int)
    a(
        "--controller-url",
        dest="controller_urls",
        action="append",
        help="controller base URL (repeatable: the gateway fails over between them)",
    )
    a("--control-secret", help="shared secret for the controller's control plane")
    a("--api-key", dest="api_keys", action="append", help="accepted API key (repeatable)")
    a("--request-timeout", type=float, help="seconds to wait for a worker (then 504)")
    a("--max-retries", type=int, help="other workers tried when one fails before answering")
    a("--store-url", help="redis://... to share keys and rate limits (default: embedded)")
    a("--max-body-bytes", type=int, help="larger request bodies get 413")
    a("--max-messages", type=int, help="chat requests with more messages get 400")
    add_logging_flag(parser)


def run(args: argparse.Namespace) -> int:
    from openai_api.app import create_app
    from servekit import server

    configure_logging(args.log_level)
    settings = GatewaySettings(**overrides(args, GatewaySettings))
    server.run(create_app(settings), settings.host, settings.port, log_level=args.log_level)
    return 0
