"""Headless Chromium for the web UI's browser tests: Debian's Chromium driven by Playwright.

A missing browser or package skips the test, unless CORRAL_REQUIRE_FIXTURES says CI must have
them. Screenshots go under test-output/ (git-ignored), for a reviewer to look at.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 1000}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def need(ok: bool, what: str) -> None:
    if not ok:
        if os.environ.get("CORRAL_REQUIRE_FIXTURES"):
            pytest.fail(f"{what} is missing; CI must install it")
        pytest.skip(f"{what} is not installed")


def check_browser() -> None:
    need(Path(CHROMIUM).exists(), f"Chromium ({CHROMIUM}, Debian package chromium)")
    need(importlib.util.find_spec("playwright") is not None, "The playwright package")


def chromium() -> Iterator[Any]:
    """A headless Chromium browser (for a fixture to yield from)."""
    check_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
