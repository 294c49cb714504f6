"""tests/requires.py: a missing optional package skips a module, except under
CORRAL_REQUIRE_FIXTURES=1 (CI), where it fails it."""

from __future__ import annotations

import pytest
from requires import require


def test_missing_package_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORRAL_REQUIRE_FIXTURES", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require("no_such_package_corral")


def test_missing_package_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_REQUIRE_FIXTURES", "1")
    with pytest.raises(pytest.fail.Exception, match="no_such_package_corral is required"):
        require("no_such_package_corral")


def test_present_package_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_REQUIRE_FIXTURES", "1")
    assert require("json").__name__ == "json"
