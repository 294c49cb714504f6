"""Shared fixtures: the tiny model (built once per session) and free loopback ports."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_model import build_tiny_llama


def pytest_configure(config: pytest.Config) -> None:
    """Embedded state (API keys, votes) goes to a file of this test session's own, never to
    the user's $CORRAL_HOME; processes the tests start inherit it."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="corral-tests-"))
    os.environ["CORRAL_STORE_URL"] = f"sqlite:///{folder / 'corral.db'}"


def pytest_unconfigure(config: pytest.Config) -> None:
    """llama-cpp-python opens two /dev/null files when imported and never closes them; with
    warnings as errors that prints "Exception ignored" at exit, so close them first."""
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            handle.close()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


# A database of its own, flushed around each use; CORRAL_TEST_REDIS_URL lets two test runs on
# one machine (two checkouts) keep out of each other's way.
REDIS_TEST_URL = os.environ.get("CORRAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _flushed_redis() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    client.flushdb()
    try:
        yield REDIS_TEST_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis (scripts/test starts one when none answers), flushed before and after."""
    yield from _flushed_redis()


@pytest.fixture(scope="module", params=["embedded", "redis"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Run a module's platform on each state backend: None = embedded, else a Redis URL
    flushed around the module (its services share that state for the module's lifetime)."""
    if request.param == "embedded":
        yield None
    else:
        yield from _flushed_redis()
