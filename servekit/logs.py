"""Logging for a service process: configured once, by its command line, never at import."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level.lower() != "debug":  # one line per HTTP call drowns the useful lines
        for chatty in ("httpx", "httpx2"):  # openai 3.x logs through httpx2
            logging.getLogger(chatty).setLevel(logging.WARNING)
