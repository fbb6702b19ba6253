"""benchmarks/bench_cluster.py: which SENet cells the report marks as measured by former code."""

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_cluster.py"
if "bench_cluster" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("bench_cluster", _PATH)
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["bench_cluster"] = _mod
    _spec.loader.exec_module(_mod)
bench = sys.modules["bench_cluster"]


def test_before_speck_repair_marks_only_unrepaired_multi_component_large_runs() -> None:
    old = {"n": 70_000, "n_components": 8, "n_edges_added": 0}
    assert bench.before_speck_repair(old)
    assert not bench.before_speck_repair({**old, "n_fragments": 7})  # recorded since the fix
    assert not bench.before_speck_repair({**old, "n_edges_added": 62})  # the repair ran then too
    assert not bench.before_speck_repair({**old, "n_components": 1})
    # 20-NN graphs up to 20,000 points: their components were whole subspaces (UoS), not specks.
    assert not bench.before_speck_repair({**old, "n": 10_000, "n_components": 10})


def test_former_key_cache_marks_runs_without_train_keys_above_2000_points() -> None:
    assert bench.former_key_cache({"n": 70_000})
    assert not bench.former_key_cache({"n": 70_000, "train_keys": "all"})
    assert not bench.former_key_cache({"n": 1_797})
