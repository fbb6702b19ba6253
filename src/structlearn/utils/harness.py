"""The benchmark harness every ``benchmarks/bench_*.py`` uses: run grid, seeds, cached runs, log, report.

A benchmark is a grid of runs (:func:`grid`: every combination of its axes, seeds included), each run
a JSON record cached under ``<out>/runs`` (:class:`RunCache`: one file per finished run, written
atomically in the one JSON convention of ``utils.report.json_safe``, so an interrupted benchmark
resumes where it stopped and a report can be rebuilt from the cache alone), a time-stamped log
(:func:`make_log`) and a report (``write_report``: Markdown with the machine/command/commit header plus
the raw numbers as JSON, re-exported here with the table and mean±std helpers).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from structlearn.utils.io import write_json
from structlearn.utils.report import (
    git_commit,
    json_restore,
    json_safe,
    machine_info,
    markdown_table,
    mean_std,
    write_report,
)

__all__ = [
    "RunCache",
    "git_commit",
    "grid",
    "json_restore",
    "json_safe",
    "log",
    "machine_info",
    "make_log",
    "markdown_table",
    "mean_std",
    "parse_seeds",
    "write_report",
]

Log = Callable[[str], None]


def make_log(path: str | Path | None = None) -> Log:
    """``log(msg)``: ``[HH:MM:SS] msg`` on stdout (flushed) and, with ``path``, appended to that file."""
    fh: IO[str] | None = None
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the benchmark

    def _log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        if fh is not None:
            fh.write(line + "\n")
            fh.flush()

    return _log


log = make_log()


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]`` (a ``--seeds`` flag); a one-line ValueError on anything else."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {text!r}")
    return seeds


def grid(**axes: Iterable[Any]) -> list[dict[str, Any]]:
    """Every combination of the axes as dicts, the last axis varying fastest (``itertools.product``).

    ``grid(norm=["preln", "dnt"], seed=[0, 1])`` → ``[{"norm": "preln", "seed": 0}, ...]`` (4 runs).
    """
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


class RunCache:
    """Finished runs, one JSON file per run: ``<root>/<key>.json`` (a key may contain ``/``).

    Records are written through ``json_safe`` (non-finite floats as "nan"/"inf" strings) atomically, and
    read back through ``json_restore`` (``none_as_nan``: also null → NaN, for caches written before that
    convention), so a fresh record and a cached one are the same Python values.
    """

    def __init__(self, root: str | Path, *, none_as_nan: bool = False) -> None:
        self.root = Path(root)
        self.none_as_nan = none_as_nan

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def read(self, path: Path) -> dict[str, Any]:
        return json_restore(json.loads(path.read_text(encoding="utf-8")), self.none_as_nan)

    def load(self, key: str, valid: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any] | None:
        """The cached record of ``key``, or ``None`` when absent or rejected by ``valid``."""
        path = self.path(key)
        if not path.is_file():
            return None
        rec = self.read(path)
        return rec if valid is None or valid(rec) else None

    def save(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        """Write ``record``; return it as it reads back (what a later cache hit returns)."""
        path = self.path(key)
        write_json(path, json_safe(record))
        return self.read(path)

    def run(
        self,
        key: str,
        fn: Callable[[], dict[str, Any]],
        valid: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """(record, ran): the cached record of ``key`` if there is a valid one, else ``fn()`` saved."""
        rec = self.load(key, valid)
        if rec is not None:
            return rec, False
        return self.save(key, fn()), True

    def records(self, pattern: str = "*") -> list[dict[str, Any]]:
        """Every cached record whose key matches the glob ``pattern``, in sorted path order."""
        return [self.read(p) for p in sorted(self.root.glob(f"{pattern}.json"))]
