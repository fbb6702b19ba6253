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
    """The bench's own defaults (so a new option cannot go missing here), then the test's settings."""
    base = dict(
        vars(bench.build_parser().parse_args([])),
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


def test_wd_sweep_picks_the_best_pair_runs_its_seeds_and_reads_the_adamw_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list = []

    def run_one(spec: dict[str, Any]) -> dict[str, Any]:
        calls.append((spec["norm"], spec["lr"], spec["weight_decay"], spec["seed"]))
        # best at (0.3, 2e-3): interior in wd, so a sweep that ignored the decay would miss it
        val = 1.8 + (spec["lr"] - 0.3) ** 2 + 10 * abs(spec["weight_decay"] - 2e-3) + 0.001 * spec["seed"]
        keys = ("part", "norm", "optimizer", "lr", "seed", "iters", "device", "dtype", "weight_decay")
        return {**{k: spec[k] for k in keys}, "status": "completed", "val_loss": val, "wall_s": 0.0}

    monkeypatch.setattr(bench, "run_one", run_one)
    # An AdamW grid cell with three seeds on another device: the reference, named with its folder.
    grid = tmp_path / "runs" / "grid_cuda_fp32_it20"
    grid.mkdir(parents=True)
    for s in range(3):
        rec = {"norm": "dnt", "optimizer": "adamw", "lr": 3e-3, "seed": s, "status": "completed"}
        (grid / f"dnt_adamw_lr0.003_s{s}.json").write_text(json.dumps({**rec, "val_loss": 1.75}))
    args = _args(tmp_path, norms=["dnt"], sweep_lrs=[0.1, 0.3], sweep_wds=[0.0, 2e-3, 5e-3])
    report = bench.part_wd_sweep(args)
    data = json.loads((tmp_path / "wd_sweep.json").read_text())["data"]
    assert data["best"]["dnt"] == [0.3, 2e-3, 0.9, 1.0]  # (LR, wd, the preset's momentum and clip)
    stage2 = [c for c in calls if c[3] > 0]
    assert sorted(stage2) == [("dnt", 0.3, 2e-3, 1), ("dnt", 0.3, 2e-3, 2)]  # seed 0 reused from stage 1
    assert len(calls) == 6 + 2
    text = report.read_text()
    assert "grid_cuda_fp32_it20" in text and "+0.0510" in text  # mean 1.801 − 1.75
    # Cached: a second call trains nothing; distinct wd values never share a cache file.
    bench.part_wd_sweep(args)
    assert len(calls) == 8 and len(list((tmp_path / "runs").glob("wd-sweep_*/*.json"))) == 8


def test_wd_sweep_also_sweeps_momentum_and_clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Momentum and clip enter the spec (and the cache name) only off the preset's values; clip 0 = none."""
    calls: list = []

    def run_one(spec: dict[str, Any]) -> dict[str, Any]:
        mu, clip = spec.get("momentum", 0.9), spec.get("grad_clip", 1.0)
        calls.append((spec["lr"], mu, clip, spec["seed"]))
        val = 1.8 + abs(mu - 0.8) + (0.0 if clip == 0.0 else 0.05) + 0.001 * spec["seed"]
        keys = ("part", "norm", "optimizer", "lr", "seed", "iters", "device", "dtype", "weight_decay")
        rec = {k: spec[k] for k in keys} | {"momentum": mu, "grad_clip": clip}
        return {**rec, "status": "completed", "val_loss": val, "wall_s": 0.0}

    monkeypatch.setattr(bench, "run_one", run_one)
    kw = dict(norms=["dnt"], sweep_lrs=[0.1], sweep_wds=[1e-3], sweep_momenta=[0.8, 0.9])
    kw["sweep_clips"] = [0.0, 1.0]
    report = bench.part_wd_sweep(_args(tmp_path, **kw))
    assert report.name == "sgdw_sweep.md"  # the decay sweep's report stays beside it
    data = json.loads((tmp_path / "sgdw_sweep.json").read_text())["data"]
    assert data["best"]["dnt"] == [0.1, 1e-3, 0.8, 0.0]
    assert len(calls) == 4 + 2
    names = sorted(f.name for f in (tmp_path / "runs").glob("wd-sweep_*/*.json"))
    assert "dnt_sgdw_lr0.1_wd0.001_s0.json" in names  # the preset's momentum and clip: the old name
    assert "dnt_sgdw_lr0.1_wd0.001_mu0.8_clip0_s2.json" in names
    text = report.read_text()
    assert "× momentum × clip" in text and "| 0.1 | 0.8 | none | 1.8000 |" in text
    # a named report: the same cached runs, nothing trained again
    assert bench.part_wd_sweep(_args(tmp_path, sweep_report="mu_widen", **kw)).name == "mu_widen.md"
    assert len(calls) == 6
    with pytest.raises(SystemExit):
        bench.main(["--part", "wd-sweep", "--sweep-report", "../x"])


def test_budget_runs_the_chosen_cells_at_every_length_and_pairs_them_by_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list = []

    def run_one(spec: dict[str, Any]) -> dict[str, Any]:
        calls.append((spec["norm"], spec["optimizer"], spec["lr"], spec.get("weight_decay"), spec["iters"]))
        # SGDW's gap halves as the budget doubles (0.08 at 20 iterations, 0.04 at 40); preln is 0.01 worse
        # than dnt with every optimizer; Muon is 0.1 better than AdamW
        val = 2.0 - spec["iters"] / 100 + (0.08 * 20 / spec["iters"] if spec["optimizer"] == "sgdw" else 0.0)
        val += 0.01 * (spec["norm"] == "preln") - 0.1 * (spec["optimizer"] == "muon")
        val -= 0.03 * (spec.get("momentum") == 0.7)  # the momentum-tuned SGDW cell
        val -= 0.02 * bool(spec.get("nesterov"))  # the Nesterov SGDW cell
        keys = ("part", "norm", "optimizer", "lr", "seed", "iters", "device", "dtype")
        rec = {k: spec[k] for k in keys}
        if spec.get("nesterov"):  # records of heavy-ball runs may lack the key (cached before it existed)
            rec["nesterov"] = True
        if spec["optimizer"] != "muon":  # Muon's records lack it, as runs cached before it was recorded do
            rec["momentum"] = spec.get("momentum", 0.9)
        return {**rec, "status": "completed", "val_loss": val + 0.001 * spec["seed"], "wall_s": 0.0}

    monkeypatch.setattr(bench, "run_one", run_one)
    two = ["dnt+adamw", "dnt+sgdw"]
    report = bench.part_budget(_args(tmp_path, budget_iters=[20, 40], seeds=[0, 1], budget_cells=two))
    assert sorted(set(calls)) == sorted(
        ("dnt", opt, lr, wd, it)
        for opt, lr, wd in (("adamw", 3e-3, None), ("sgdw", 0.1, 1e-3))
        for it in (20, 40)
    )
    assert len(calls) == 8
    text = report.read_text()
    assert "+0.0800 ± 0.0000 (2)" in text and "+0.0400 ± 0.0000 (2)" in text
    bench.part_budget(_args(tmp_path, budget_iters=[20, 40], seeds=[0, 1], budget_cells=two))
    assert len(calls) == 8  # cached: nothing trains twice
    # every cell: the best cell is dnt+muon; DNT's effect paired by seed
    report = bench.part_budget(
        _args(tmp_path, budget_iters=[20, 40], seeds=[0, 1], budget_cells=list(bench.BUDGET_CELLS))
    )
    assert len(calls) == 4 * len(bench.BUDGET_CELLS)  # the two cached cells were not run again
    data = json.loads((tmp_path / "budget.json").read_text())["data"]
    assert data["20"]["best_cell"] == "dnt+muon"
    assert data["20"]["sgdw_minus_best_cell"] == pytest.approx([0.18, 0.18])
    for key in ("dnt_minus_preln_adamw", "dnt_minus_preln_muon", "dnt_minus_preln_sgdw"):
        assert data["40"][key] == pytest.approx([-0.01, -0.01])
    # the momentum-tuned cells are told apart by their momentum; the tuned AdamW cell is the best AdamW cell
    assert data["20"]["best_adamw"] == "dnt+adamw-b0.7"
    assert data["20"]["sgdw_minus_best_adamw"] == pytest.approx([0.11, 0.11])
    assert data["20"]["sgdw_mu0.7_minus_best_adamw"] == pytest.approx([0.08, 0.08])
    # the Nesterov cell: same LR, wd and momentum as dnt+sgdw, told apart by the flag (own cache entry)
    assert data["20"]["sgdw_nesterov_minus_best_adamw"] == pytest.approx([0.09, 0.09])
    assert "dnt+sgdw-nesterov lr 0.1, wd 0.001, Nesterov momentum" in report.read_text()


def test_wd_sweep_of_adamw_sweeps_beta1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--sweep-optimizer adamw``: the momentum axis is β₁ (β₂ stays the preset's), in the spec, the
    config that trains, the record and the report."""
    import structlearn.train.engine as engine

    seen: list = []

    class FakeTrainer:
        def __init__(self, cfg: Any) -> None:
            seen.append(cfg)

        def fit(self) -> Any:
            b1 = seen[-1].betas[0]
            return argparse.Namespace(
                status="completed", final_val_loss=1.7 + abs(b1 - 0.8), final_train_loss=1.6,
                tokens_per_s=1.0, optimizer_state_bytes=0, n_params=0, train_s=0.0, history=[],
            )  # fmt: skip

    monkeypatch.setattr(engine, "Trainer", FakeTrainer)
    kw = dict(norms=["dnt"], sweep_optimizer="adamw", sweep_lrs=[3e-3], sweep_wds=[0.1], seeds=[0, 1])
    report = bench.part_wd_sweep(_args(tmp_path, sweep_momenta=[0.8, 0.9], **kw))
    assert [c.optimizer for c in seen] == ["adamw"] * 3
    assert sorted(c.betas for c in seen) == [(0.8, 0.99), (0.8, 0.99), (0.9, 0.99)]
    assert report.name == "adamw_sweep.md"
    names = sorted(f.name for f in (tmp_path / "runs").glob("wd-sweep_*/*.json"))
    assert names == ["dnt_adamw_lr0.003_wd0.1_mu0.8_s0.json", "dnt_adamw_lr0.003_wd0.1_mu0.8_s1.json",
                     "dnt_adamw_lr0.003_wd0.1_s0.json"]  # fmt: skip
    text = report.read_text()
    assert "AdamW weight decay × LR × β₁ × clip" in text and "| dnt+adamw | 0.003 | 0.1 | 0.8 | 1 |" in text


def test_lr_scales_picks_each_cells_best_pair_and_pairs_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stage 1 on seed 0 picks each cell's best (embedding, gain) pair; stage 2 runs it and (1, 1) on
    every seed; the cache keys keep scaled and unscaled runs apart."""
    calls: list = []
    best = {"sgdw": (0.3, 10.0), "adamw": (1.0, 1.0)}

    def run_one(spec: dict[str, Any]) -> dict[str, Any]:
        pair = (spec.get("embedding_lr_scale", 1.0), spec.get("gain_lr_scale", 1.0))
        calls.append((spec["optimizer"], pair, spec["seed"]))
        off = abs(math.log10(pair[0] / best[spec["optimizer"]][0])) + abs(
            math.log10(pair[1] / best[spec["optimizer"]][1])
        )
        base = 1.75 if spec["optimizer"] == "sgdw" else 1.72
        return {
            **{k: spec[k] for k in ("part", "norm", "optimizer", "lr", "seed", "iters", "device", "dtype")},
            "embedding_lr_scale": pair[0],
            "gain_lr_scale": pair[1],
            "status": "completed",
            "val_loss": base + 0.03 * off + 0.001 * spec["seed"],
            "wall_s": 0.0,
        }

    monkeypatch.setattr(bench, "run_one", run_one)
    bench.part_lr_scales(_args(tmp_path))
    data = json.loads((tmp_path / "lr_scales.json").read_text())["data"]
    assert data["best"] == {"dnt+sgdw-nesterov": [0.3, 10.0], "dnt+adamw-b0.7": [1.0, 1.0]}
    assert (
        len(calls) == 2 * 5 + 3 * 2 + 0 * 2
    )  # stage 1: 5 pairs × 2 cells; stage 2: 3 new SGDW + 2 AdamW runs
    assert data["gaps"]["dnt+SGDW: scaled − unscaled"] == pytest.approx(
        [-0.03 * (1 + math.log10(1 / 0.3))] * 3
    )
    assert data["gaps"]["dnt+SGDW (scaled) − dnt+AdamW (scaled)"] == pytest.approx([0.03] * 3)
    n = len(calls)
    bench.part_lr_scales(_args(tmp_path))  # every run cached now
    assert len(calls) == n
