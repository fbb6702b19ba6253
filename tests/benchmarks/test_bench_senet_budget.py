"""benchmarks/bench_senet_budget.py: rows are cached, so a longer budget refits only the new rows."""

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_senet_budget.py"
sys.path.insert(0, str(_PATH.parent))  # the script imports bench_cluster
_spec = importlib.util.spec_from_file_location("bench_senet_budget", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_senet_budget"] = bench
_spec.loader.exec_module(bench)


def test_rows_are_cached_and_a_longer_budget_fits_only_the_new_rows(tmp_path: Path, monkeypatch) -> None:
    rows = bench.run("wine", 60, [3], [0], 2, tmp_path)
    names = [r["method"] for r in rows]
    assert names == ["k-means", "SpectralKNN", "SENet, 3 iterations", "EnSC, γ = 200, SENet's graph",
                     "elastic-net minimiser (2 points)"]  # fmt: skip
    assert all(r["commit"] for r in rows)

    fitted: list[str] = []
    real = bench.fit_row

    def spy(tag: str, name: str, *args: object) -> dict:
        fitted.append(name)
        return real(tag, name, *args)

    monkeypatch.setattr(bench, "fit_row", spy)
    again = bench.run("wine", 60, [3, 6], [0], 2, tmp_path)
    assert fitted == ["SENet, 6 iterations"]
    assert again[:3] == rows[:3] and again[3]["method"] == "SENet, 6 iterations"
    assert "SENet, 6 iterations" in bench.report(again)


def test_slug_is_an_ascii_file_name() -> None:
    assert bench._slug("EnSC, γ = 200, SENet's graph") == "EnSC_200_SENet_s_graph"
    assert bench._slug("SENet, 16,000 iterations") == "SENet_16_000_iterations"
