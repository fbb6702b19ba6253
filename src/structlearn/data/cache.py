"""Where generated data is cached: ``$STRUCTLEARN_CACHE`` or ``~/.cache/structlearn``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("STRUCTLEARN_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "structlearn"
    path.mkdir(parents=True, exist_ok=True)
    return path
