"""Metrics as JSON Lines: one record per logged step, flushed as it is written.

Non-finite floats (a diverged loss) are written as ``null`` so every line stays strict JSON.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import IO, Any

from structlearn.utils.io import atomic_open


def clean_record(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


class MetricsLog:
    """Append-only JSONL file; ``rewrite(records)`` replaces its content atomically (used on resume)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        self.close()
        with atomic_open(self.path, "w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(clean_record(r), allow_nan=False) + "\n")

    def write(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        self._fh.write(json.dumps(clean_record(record), allow_nan=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a metrics file (blank lines skipped)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
