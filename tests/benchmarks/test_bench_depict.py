"""benchmarks/bench_depict.py: argument checks (the training itself is the engine's, tested elsewhere)."""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_depict.py"
_spec = importlib.util.spec_from_file_location("bench_depict", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_depict"] = bench
_spec.loader.exec_module(bench)


@pytest.mark.parametrize("flag", ["--steps", "--seeds", "--train", "--batch-size", "--n-layer"])
def test_bad_arguments_exit_2(flag: str, tmp_path: Path) -> None:
    assert bench.main([flag, "0", "--out", str(tmp_path)]) == 2


def test_mean_std_formatting() -> None:
    assert bench._ms([0.5, 0.7], 100) == "60.0 ± 14.1"
    assert bench._ms([3.0]) == "3.0 ± 0.0"
