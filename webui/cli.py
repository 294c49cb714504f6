"""`corral webui` / `python -m webui` flags, and `corral leaderboard`.

`corral webui` checks the gateway and the arena weights before it starts serving: an unknown
model or a table of zero weights exits with status 2 and one line saying why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

from pydantic import ValidationError

from servekit.cliargs import add_settings_arguments, settings_from_args
from webui.settings import WebUISettings

USAGE_ERROR = 2
LEADERBOARD_SETTINGS = (
    "store_url",
    "bootstrap_rounds",
    "leaderboard_seed",
    "min_votes",
    "leaderboard_anchor",
    "retired_models",
    "identity_words",
    "identity_makers",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, WebUISettings)


async def _preflight(settings: WebUISettings) -> None:
    """Reach the gateway and check the arena weights before serving anything."""
    from webui.state import open_state

    async with contextlib.AsyncExitStack() as stack:
        await open_state(settings, stack)


def run(args: argparse.Namespace) -> int:
    from servekit import server
    from servekit.logs import configure_logging
    from webui.app import create_app
    from webui.sampling import ArenaConfigError
    from webui.service import GatewayUnavailable

    try:
        settings = settings_from_args(args, WebUISettings)
        configure_logging(settings.log_level)
        asyncio.run(_preflight(settings))
    except (ValidationError, ArenaConfigError, GatewayUnavailable) as exc:
        print(f"corral webui: {_one_line(exc)}", file=sys.stderr)
        return USAGE_ERROR
    server.run(
        create_app(settings),
        settings.host,
        settings.port,
        log_level=settings.log_level,
        forwarded_allow_ips=settings.trusted_proxies,
    )
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
    add_settings_arguments(
        p, WebUISettings, only=LEADERBOARD_SETTINGS, flags={"leaderboard_seed": "--seed"}
    )
    p.set_defaults(func=run_leaderboard)


async def _read_battles(settings: WebUISettings) -> Any:
    from store import open_events
    from webui.identity import IdentityFilter
    from webui.votes import VoteTable, load

    table = VoteTable(IdentityFilter(settings.identity_words, settings.identity_makers))
    events = open_events(settings.store_url)
    try:
        await load(events, table)
    finally:
        await events.close()
    return table.battles()


def run_leaderboard(args: argparse.Namespace) -> int:
    from store import StoreUnavailable
    from webui import leaderboard, report

    try:
        settings = settings_from_args(args, WebUISettings)
    except ValidationError as exc:
        print(f"corral leaderboard: {_one_line(exc)}", file=sys.stderr)
        return USAGE_ERROR
    try:
        battles = asyncio.run(_read_battles(settings))
    except (StoreUnavailable, ValueError) as exc:
        print(f"corral leaderboard: cannot read the votes: {exc}", file=sys.stderr)
        return 1
    board = leaderboard.compute(battles, leaderboard.Options.from_settings(settings))
    sys.stdout.write(report.FORMATS[args.format](board))
    return 0
