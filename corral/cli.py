"""The `corral` command: one entry point for every service and tool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from controller import cli as controller_cli
    from conv_templates import cli as templates_cli
    from corral import up
    from model_worker import cli as worker_cli
    from model_worker.weights import cli as weights_cli
    from openai_api import cli as api_cli
    from openai_api import keys_cli
    from webui import cli as webui_cli

    parser = argparse.ArgumentParser(
        prog="corral", description="Serve LLaMA-family chat models: API, arena, controller."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="start the whole platform on this machine")
    up.add_arguments(p)
    p.set_defaults(func=up.run)

    p = sub.add_parser("controller", help="run the controller (worker registry and dispatch)")
    controller_cli.add_arguments(p)
    p.set_defaults(func=controller_cli.run)

    p = sub.add_parser("worker", help="run a model worker")
    worker_cli.add_arguments(p)
    p.set_defaults(func=worker_cli.run)

    p = sub.add_parser("api", help="run the OpenAI-compatible gateway")
    api_cli.add_arguments(p)
    p.set_defaults(func=api_cli.run)

    p = sub.add_parser("webui", help="run the web UI (chat, arena, leaderboard)")
    webui_cli.add_arguments(p)
    p.set_defaults(func=webui_cli.run)

    templates_cli.add_subparser(sub)
    weights_cli.add_subparser(sub)
    keys_cli.add_subparser(sub)
    webui_cli.add_leaderboard_subparser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
