"""bench_reid part cc: SiCL runs cached before the fidelity fixes are not reused; other arms' are."""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_reid.py"
_spec = importlib.util.spec_from_file_location("bench_reid_sicl", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_reid_sicl"] = bench
_spec.loader.exec_module(bench)


def test_a_sicl_run_cached_before_the_fixes_is_stale_and_a_baseline_run_is_not(
    tmp_path: Path, monkeypatch
) -> None:
    cache = bench.RunCache(tmp_path / "runs")
    old = {"final": {"cc_mAP": 0.057}, "seconds": 1.0}  # no "revision": written by the old SiCL
    cache.save(bench.run_name("SiCL", 0.7, 100, 12, outfits=3), old)
    cache.save(bench.run_name("SpCL-style (RGB)", 0.7, 100, 12, outfits=3), old)
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "CACHED_ONLY", True)  # a miss raises instead of training
    assert bench.run_one("SpCL-style (RGB)", 0.7, 100, 12, False, 3)["final"]["cc_mAP"] == 0.057
    with pytest.raises(bench.MissingRunError):
        bench.run_one("SiCL", 0.7, 100, 12, False, 3)
    cache.save(bench.run_name("SiCL", 0.7, 100, 12, outfits=3), old | {"revision": 2})
    assert bench.run_one("SiCL", 0.7, 100, 12, False, 3)["final"]["cc_mAP"] == 0.057
    assert set(bench.CC_REVISION) == {a for a, kw in bench.CC_ARMS.items() if kw["method"] == "sicl"}
