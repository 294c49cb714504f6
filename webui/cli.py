"""`corral webui` / `python -m webui` flags, and `corral leaderboard`.

`corral webui` checks the gateway and the arena weights before it starts serving: an unknown
model or a table of zero weights exits with status 2 and one line saying why.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from pydantic import ValidationError

from servekit.cliargs import add_logging_flag, configure_logging, overrides
from webui.settings import WebUISettings

USAGE_ERROR = 2


def _weight(text: str) -> tuple[str, float]:
    model, sep, value = text.rpartition("=")
    try:
        if not sep or not model:
            raise ValueError
        return model, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MODEL=WEIGHT, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--host")
    a("--port", type=int)
    a("--api-url", help="the gateway's OpenAI base URL (default http://127.0.0.1:8000/v1)")
    a("--api-key", help="API key for the gateway, when it requires one")
    a("--store-url", help="redis://host:port/db or sqlite:///path (default: embedded file)")
    a(
        "--arena-weight",
        dest="arena_weights",
        action="append",
        type=_weight,
        metavar="MODEL=WEIGHT",
        help="battle draw weight (repeatable; 0 = never drawn; default: every model 1)",
    )
    a("--max-input-chars", type=int, help="longest prompt accepted")
    a("--max-turns", type=int, help="user messages per conversation")
    a("--max-tokens", type=int, help="longest arena answer, in tokens")
    a("--session-rate-limit", type=int, help="generations per session per window (0: off)")
    a("--ip-rate-limit", type=int, help="generations per client IP per window (0: off)")
    a("--startup-timeout", type=float, help="seconds to wait for the gateway's models")
    a(
        "--wait-for-model",
        dest="wait_for_models",
        action="append",
        metavar="MODEL",
        help="wait at start-up until the gateway lists MODEL (repeatable)",
    )
    add_logging_flag(parser)


def _settings(args: argparse.Namespace) -> WebUISettings:
    given: dict[str, Any] = overrides(args, WebUISettings)
    if "arena_weights" in given:
        given["arena_weights"] = dict(given["arena_weights"])
    return WebUISettings(**given)


async def _preflight(settings: WebUISettings) -> None:
    from webui.service import WebUI

    ui = WebUI(settings)
    try:
        await ui.open()
    finally:
        await ui.close()


def run(args: argparse.Namespace) -> int:
    from servekit import server
    from webui.app import create_app
    from webui.sampling import ArenaConfigError
    from webui.service import GatewayUnavailable

    configure_logging(args.log_level)
    try:
        settings = _settings(args)
        asyncio.run(_preflight(settings))
    except (ValidationError, ArenaConfigError, GatewayUnavailable) as exc:
        print(f"corral webui: {_one_line(exc)}", file=sys.stderr)
        return USAGE_ERROR
    server.run(create_app(settings), settings.host, settings.port, log_level=args.log_level)
    return 0


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)


def add_leaderboard_subparser(subparsers: Any) -> None:
    """Add `leaderboard`: the arena ratings from the stored votes, as a table, JSON or CSV."""
    p = subparsers.add_parser(
        "leaderboard",
        help="print the arena leaderboard from the stored votes",
        description="Bradley-Terry ratings with bootstrap intervals, Elo and vote counts, "
        "computed from the anonymous battles in the store (the numbers the web UI shows).",
    )
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--store-url", help="redis://host:port/db or sqlite:///path")
    p.add_argument("--bootstrap-rounds", type=int, help="resamples for the intervals (>= 100)")
    p.add_argument("--seed", dest="leaderboard_seed", type=int, help="bootstrap seed")
    p.add_argument(
        "--identity-word",
        dest="identity_words",
        action="append",
        help="word that reveals a model (repeatable; replaces the default list)",
    )
    p.set_defaults(func=run_leaderboard)


async def _read_votes(settings: WebUISettings) -> list[dict[str, Any]]:
    from store import open_events
    from webui.records import VOTES

    events = open_events(settings.store_url)
    try:
        return [record for _, record in await events.read(VOTES)]
    finally:
        await events.close()


def run_leaderboard(args: argparse.Namespace) -> int:
    from store import StoreUnavailable
    from webui import leaderboard, report

    try:
        settings = WebUISettings(**overrides(args, WebUISettings))
    except ValidationError as exc:
        print(f"corral leaderboard: {_one_line(exc)}", file=sys.stderr)
        return USAGE_ERROR
    try:
        votes = asyncio.run(_read_votes(settings))
    except (StoreUnavailable, ValueError) as exc:
        print(f"corral leaderboard: cannot read the votes: {exc}", file=sys.stderr)
        return 1
    board = leaderboard.build(
        votes, settings.identity_words, settings.bootstrap_rounds, settings.leaderboard_seed
    )
    sys.stdout.write(report.FORMATS[args.format](board))
    return 0
