"""Command-line flags -> settings overrides, so a flag and its environment variable agree."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pydantic import BaseModel


def overrides(args: argparse.Namespace, settings_cls: type[BaseModel]) -> dict[str, Any]:
    """The flags the user actually gave, by settings field name (unset flags are None)."""
    fields = settings_cls.model_fields
    return {k: v for k, v in vars(args).items() if k in fields and v is not None}


def add_logging_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level.lower() != "debug":  # one line per HTTP call drowns the useful lines
        for chatty in ("httpx", "httpx2"):  # openai 3.x logs through httpx2
            logging.getLogger(chatty).setLevel(logging.WARNING)
