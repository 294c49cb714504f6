"""Where Corral keeps its files: `$CORRAL_HOME`, default `~/.cache/corral`."""

from __future__ import annotations

import os
from pathlib import Path


def corral_home() -> Path:
    return Path(os.environ.get("CORRAL_HOME") or Path.home() / ".cache" / "corral")
