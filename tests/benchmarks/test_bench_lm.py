"""benchmarks/bench_lm.py: sweep widening, edge flags, seed stage, caching and goals (training stubbed;
the training itself is the engine's, tested elsewhere)."""

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_lm.py"
_spec = importlib.util.spec_from_file_location("bench_lm", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_lm"] = bench
_spec.loader.exec_module(bench)

# Best LR per cell of the stub: interior, below the ladder, far above it (still at the edge after one
# widening), and a diverging cell.
BEST = {("preln", "adamw"): 3e-3, ("dnt", "adamw"): 1e-4, ("preln", "sgdw"): 30.0, ("dnt", "sgdw"): 0.1}


def _fake_run(calls: list) -> Any:
    def run_one(spec: dict[str, Any]) -> dict[str, Any]:
        calls.append((spec["norm"], spec["optimizer"], spec["lr"], spec["seed"]))
        best = BEST[(spec["norm"], spec["optimizer"])]
        val = 1.9 + 0.05 * math.log10(spec["lr"] / best) ** 2 + 0.001 * spec["seed"]
        status = (
            "diverged"
            if spec["optimizer"] == "sgdw" and spec["lr"] > 0.2 and spec["norm"] == "dnt"
            else "completed"
        )
        return {
            **{k: spec[k] for k in ("part", "norm", "optimizer", "lr", "seed", "iters", "device", "dtype")},
            "status": status,
            "val_loss": val if status == "completed" else float("nan"),
            "tokens_per_s": 1000.0,
            "optimizer_state_bytes": 8000 if spec["optimizer"] == "adamw" else 4000,
            "n_params": 1000,
            "wall_s": 0.0,
        }

    return run_one


def _args(out: Path, **kw: Any) -> argparse.Namespace:
    base = dict(
        out=str(out),
        iters=20,
        device="cpu",
        dtype="fp32",
        workers=1,
        threads=1,
        seeds=[0, 1, 2],
        norms=["preln", "dnt"],
        optimizers=["adamw", "sgdw"],
        widen=1,
        report_only=False,
    )
    return argparse.Namespace(**{**base, **kw})


def test_grid_widens_flags_edges_runs_seeds_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list = []
    monkeypatch.setattr(bench, "run_one", _fake_run(calls))
    report = bench.part_grid(_args(tmp_path))
    data = json.loads((tmp_path / "grid.json").read_text())["data"]
    ladders = data["ladders"]
    assert sorted(ladders["preln+adamw"]) == [1e-3, 3e-3, 1e-2]  # interior: not widened
    assert min(ladders["dnt+adamw"]) == pytest.approx(1e-3 / 3)  # best at the low edge: one rung down
    assert max(ladders["preln+sgdw"]) == pytest.approx(0.9)  # one rung up, still the edge: flagged
    cells = data["cells"]
    assert cells["preln+adamw"]["lr"] == 3e-3 and cells["preln+adamw"]["seeds"] == [0, 1, 2]
    assert cells["dnt+sgdw"]["lr"] == 0.1  # the diverged 0.3 ranks last
    assert any("preln+sgdw" in f and "edge" in f for f in data["flags"])
    assert any("dnt+adamw" in f and "edge" in f for f in data["flags"])  # 3.3e-4 is still the edge
    assert not any("preln+adamw" in f for f in data["flags"])
    text = report.read_text()
    assert "⚠ best LR at the sweep's edge" in text and "8.0 B/param" in text and "4.0 B/param" in text
    assert "dnt+SGDW − best AdamW cell" in text and "goal ≤ 0.02" in text
    # Every run once; a second invocation trains nothing (the JSON cache) and reports the same.
    assert len(calls) == len(set(calls))
    n = len(calls)
    bench.part_grid(_args(tmp_path))
    assert len(calls) == n
    assert json.loads((tmp_path / "grid.json").read_text())["data"]["cells"] == cells


def test_report_only_trains_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    monkeypatch.setattr(bench, "run_one", _fake_run(calls))
    bench.part_grid(_args(tmp_path, report_only=True))
    assert calls == [] and "no finished sweep run" in (tmp_path / "grid.md").read_text()


def test_helpers() -> None:
    assert bench.warmup_for(2000) == 100 and bench.warmup_for(20) == 1 and bench.warmup_for(2) == 1
    assert bench.load_nanogpt(None) is None and bench.load_nanogpt("/nonexistent") is None
    cells = {
        "preln+adamw": {"val": [1.90, 1.92], "mean": 1.91, "std": 0.0141},
        "dnt+adamw": {"val": [1.89, 1.91], "mean": 1.90, "std": 0.0141},
        "dnt+sgdw": {"val": [1.93, 1.95], "mean": 1.94, "std": 0.0141},
        "preln+muon": {"val": [1.80, 1.81], "mean": 1.805, "std": 0.007},
        "dnt+muon": {"val": [1.70, 1.71], "mean": 1.705, "std": 0.007},
    }
    goals = bench.goal_lines(cells, 2000)
    assert any("= +0.0400 nats" in g and "NOT met" in g and "(dnt+adamw)" in g for g in goals)
    assert any("Does DNT help Muon" in g and "helps" in g for g in goals)
    assert any("vs nanoGPT's ≈ 1.88: Δ = +0.0300" in g for g in goals)
