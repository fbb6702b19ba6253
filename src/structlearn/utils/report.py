"""Benchmark reporting: machine description, mean±std formatting, Markdown tables, result files.

Every benchmark writes ``benchmarks/results/<name>/`` with a Markdown report whose header names the
machine, the command and the commit that produced it, plus the raw numbers as JSON.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from structlearn.utils.io import atomic_open, write_json


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str:
    """Short commit hash of the working tree (with ``-dirty`` when modified), or ``unknown``."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=10"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What produced a result: hardware, software versions, threads, command and commit."""
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host_cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "commit": git_commit(),
    }
    try:
        import scipy
        import sklearn

        info["scipy"] = scipy.__version__
        info["sklearn"] = sklearn.__version__
    except ImportError:  # pragma: no cover - both are dependencies
        pass
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def mean_std(values: Sequence[float], fmt: str = ".3f") -> str:
    """``mean ± std`` (sample std, ddof=1; std omitted for a single value; NaNs counted)."""
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    if arr.size == 0:
        return "n/a"
    finite = arr[np.isfinite(arr)]
    n_bad = arr.size - finite.size
    suffix = f" ({n_bad} non-finite)" if n_bad else ""
    if finite.size == 0:
        return f"nan{suffix}"
    if finite.size == 1:
        return f"{finite[0]:{fmt}}{suffix}"
    return f"{finite.mean():{fmt}} ± {finite.std(ddof=1):{fmt}}{suffix}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_header(info: dict[str, Any] | None = None) -> str:
    """Markdown lines naming machine, software, command and commit."""
    info = info or machine_info()
    return "\n".join(
        [
            f"- date: {info['date']}",
            f"- machine: {info['host_cpu']} ({info['cpu_count']} cores),"
            f" torch threads {info['torch_threads']}",
            f"- software: Python {info['python']}, torch {info['torch']}, numpy {info['numpy']}"
            + (f", scikit-learn {info['sklearn']}, scipy {info['scipy']}" if "sklearn" in info else ""),
            f"- command: `{info['command']}`",
            f"- commit: {info['commit']}",
        ]
    )


def write_report(
    out_dir: str | os.PathLike[str],
    name: str,
    title: str,
    body: str,
    data: dict[str, Any],
    info: dict[str, Any] | None = None,
) -> Path:
    """Write ``<out_dir>/<name>.md`` (header + body) and ``<name>.json`` (machine + data) atomically."""
    out = Path(out_dir)
    info = info or machine_info()
    md_path = out / f"{name}.md"
    with atomic_open(md_path, "w", encoding="utf-8") as fh:
        fh.write(f"# {title}\n\n{machine_header(info)}\n\n{body.rstrip()}\n")
    write_json(out / f"{name}.json", {"machine": info, "data": json_safe(data)})
    return md_path


NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def json_safe(obj: Any) -> Any:
    """Plain, strict-JSON types — the one convention of every report and run cache: dict keys → str,
    tuples and arrays → lists, numpy scalars → Python, non-finite floats → the strings "nan", "inf",
    "-inf" (JSON has no NaN; strings keep ±inf apart, unlike null). :func:`json_restore` inverts it."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else str(float(obj))
    return obj


def json_restore(obj: Any, none_as_nan: bool = False) -> Any:
    """Inverse of :func:`json_safe`: "nan" / "inf" / "-inf" → floats (and null → NaN with
    ``none_as_nan``, for caches written before the convention stored non-finite values as null)."""
    if isinstance(obj, dict):
        return {k: json_restore(v, none_as_nan) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_restore(v, none_as_nan) for v in obj]
    if isinstance(obj, str) and obj in NONFINITE:
        return NONFINITE[obj]
    if obj is None and none_as_nan:
        return math.nan
    return obj
