"""The learning-rate bracketing logic of benchmarks/bench_dnt.py (the training itself is the engine's)."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_dnt.py"
_spec = importlib.util.spec_from_file_location("bench_dnt", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_dnt"] = bench
_spec.loader.exec_module(bench)


def test_ladder_neighbours_follow_1_3_10():
    assert bench.ladder_neighbours(1.0) == (0.3, 3.0)
    assert bench.ladder_neighbours(0.3) == (0.1, 1.0)
    assert bench.ladder_neighbours(3e-3) == (1e-3, 1e-2)
    assert bench.ladder_neighbours(1e-3) == (3e-4, 3e-3)


def _quadratic(best):
    calls = []

    def f(lr):
        calls.append(lr)
        return (math.log10(lr) - math.log10(best)) ** 2  # a loss, lower is better

    return f, calls


@pytest.mark.parametrize("best", [3e-5, 1e-2, 0.3])
def test_bracket_widens_until_the_best_is_interior(best):
    f, calls = _quadratic(best)
    lr, scores, ok = bench.bracket(f, (1e-3, 3e-3, 1e-2), higher_is_better=False, max_widen=5)
    lrs = sorted(scores)
    assert ok and lr == pytest.approx(best) and lrs[0] < lr < lrs[-1]
    assert len(calls) == len(set(calls))  # no learning rate evaluated twice


def test_bracket_gives_up_after_max_widen_and_says_so():
    f, _ = _quadratic(1e-9)
    lr, scores, ok = bench.bracket(f, (1e-3, 3e-3, 1e-2), higher_is_better=False, max_widen=2)
    assert not ok and len(scores) == 5 and lr == min(scores)


def test_diverged_runs_rank_worst_and_accuracy_is_maximised():
    scores = {1e-3: 0.5, 3e-3: 0.8, 1e-2: float("nan"), 3e-2: 0.9}
    lr, _, ok = bench.bracket(scores.__getitem__, (1e-3, 3e-3, 1e-2), higher_is_better=True, max_widen=0)
    assert lr == 3e-3 and ok
