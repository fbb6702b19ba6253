"""The whole bad-input sweep (benchmarks/bad_input_sweep.py, ~550 cases, a few seconds): every case ok.

This keeps each class of input fault covered: a new traceback, wrong exit code, leftover output or
silent wrong answer anywhere in the swept CLI/API surface fails here with the case named.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bad_input_sweep_all_ok(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bad_input_sweep.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = (tmp_path / "sweep.md").read_text(encoding="utf-8")
    n_cases = int(report.split(" cases, ")[0].rsplit("— ", 1)[1])
    assert n_cases >= 300
    assert f"| ok | {n_cases} |" in report, report.split("## Cases not ok")[1][:3000]
