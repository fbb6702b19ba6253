"""DNT reproduction (issue 2 item 7; arXiv 2507.17501; spec dnt.md §7): {preln, dnt} × {AdamW, SGDW}.

For each task — (a) a char-level GPT on the Python documentation (stdlib sources when absent), (b) a ViT
on Fashion-MNIST (MNIST-1D when absent) — and each cell of the grid:

1. **sweep** (seed 0): a learning-rate sweep on a ×3 ladder (1, 3, 10, 30, ...) that is widened one rung
   at a time until the best rate is interior (at most ``MAX_WIDEN`` rungs per side). For SGDW the weight
   decay is then swept at the best rate, and if another decay wins, the two neighbouring rates are
   re-run at that decay (one coordinate-descent pass: weight decay steers the effective step η/‖W‖² of
   every weight that feeds a norm).
2. **seeds**: seeds 0, 1, 2 at each cell's best (lr, wd) (seed 0 is the sweep run); mean ± std of the
   final validation loss (LM) / test accuracy (image), divergence count, and the heavy-tail gradient
   statistics of spec §7.4 at 10 / 50 / 90 % of training (``diagnostics.gradients``; after backward,
   before clipping, on the training batch of that step — identical across arms for a given seed).
3. **long**: each optimizer's best cell at 4× the steps, seeds 0, 1, 2, every seed reported with its
   curve, and early plateaus counted.

Every run goes through ``structlearn.train.Trainer`` (no second training loop). Each finished run is
cached as JSON under ``<out>/runs/``; a restart skips finished runs, and 4× runs checkpoint under
``<out>/work/`` so an interrupted one resumes where it stopped. Selection of learning rates uses the same
held-out metric that is reported (there is no third split); the seed stage repeats seed 0, so the
reported means carry a small optimistic selection bias, equal for every cell.

    python benchmarks/bench_dnt.py                 # full run (budget in README of the results)
    python benchmarks/bench_dnt.py --quick         # tiny sizes, a smoke run of every stage
    python benchmarks/bench_dnt.py --tasks image   # one task
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from structlearn.data.images import fashion_mnist_available
from structlearn.diagnostics.gradients import gradient_histogram, gradient_stats
from structlearn.diagnostics.plots import plot_gradient_histograms
from structlearn.train.config import TrainConfig
from structlearn.train.engine import Trainer
from structlearn.utils.harness import RunCache, log, markdown_table, mean_std, write_report
from structlearn.utils.plotting import save_figure, subplots

OUT = Path(__file__).resolve().parent / "results" / "dnt"
QUICK_OUT = Path(tempfile.gettempdir()) / "structlearn_bench_dnt_quick"  # smoke runs are not results
SCHEMES = ("preln", "dnt")
OPTIMIZERS = ("adamw", "sgdw")
SEEDS = (0, 1, 2)
FRACTIONS = (0.1, 0.5, 0.9)
MAX_WIDEN = 3
LONG_FACTOR = 4


# --------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class TaskPlan:
    """One task of the benchmark: the shared TrainConfig fields, the step budget and the grids."""

    name: str
    title: str
    base: dict[str, Any]
    steps: int
    metric: str  # "val_loss" (lower is better) or "test_acc" (higher is better)
    lr_grid: dict[str, tuple[float, ...]]
    wd_default: dict[str, float]
    wd_grid_sgdw: tuple[float, ...]
    warmup_frac: float = 0.05
    evals: int = 2  # evaluations per run (at 50 % and at the end); the long runs evaluate 8 times

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "test_acc"


def lm_plan(quick: bool) -> TaskPlan:
    from structlearn.data.corpus import pydoc_root

    corpus = "pydoc" if pydoc_root().is_dir() else "stdlib"
    base = dict(
        task="lm",
        corpus=corpus,
        tokenizer="char",
        n_layer=4,
        n_head=4,
        n_embd=128,
        block_size=128,
        batch_size=16,
        eval_batches=10,
        betas=(0.9, 0.99),
        grad_clip=1.0,
        min_lr_frac=0.1,
    )
    steps = 300
    if quick:
        base |= dict(
            n_layer=1, n_embd=32, n_head=2, block_size=32, batch_size=4, eval_batches=2, max_bytes=200_000
        )
        steps = 20
    return TaskPlan(
        name="lm",
        title=f"char-level GPT on the {'Python documentation' if corpus == 'pydoc' else 'stdlib source'}",
        base=base,
        steps=steps,
        metric="val_loss",
        lr_grid={"adamw": (1e-3, 3e-3, 1e-2), "sgdw": (0.1, 0.3, 1.0)},
        wd_default={"adamw": 0.1, "sgdw": 5e-4},
        wd_grid_sgdw=(0.0, 5e-4, 5e-3, 5e-2),
        evals=2,
    )


def image_plan(quick: bool) -> TaskPlan:
    dataset = "fashion_mnist" if fashion_mnist_available() else "mnist1d"
    base = dict(
        task="image",
        dataset=dataset,
        n_layer=4,
        n_head=4,
        n_embd=64,
        batch_size=128,
        eval_batch_size=1000,
        betas=(0.9, 0.99),
        grad_clip=1.0,
        min_lr_frac=0.1,
    )
    steps = 600
    if quick:
        base |= dict(dataset="digits", n_layer=1, n_embd=16, n_head=2, batch_size=32, eval_batch_size=500)
        steps = 20
    return TaskPlan(
        name="image",
        title=f"ViT on {base['dataset']}",
        base=base,
        steps=steps,
        metric="test_acc",
        lr_grid={"adamw": (1e-3, 3e-3, 1e-2), "sgdw": (0.1, 0.3, 1.0)},
        wd_default={"adamw": 0.1, "sgdw": 5e-4},
        wd_grid_sgdw=(0.0, 5e-4, 5e-3, 5e-2),
        evals=2,
    )


# --------------------------------------------------------------------------------- the lr ladder
def ladder_neighbours(lr: float) -> tuple[float, float]:
    """The rungs below and above ``lr`` on the 1-3-10 ladder (…, 0.1, 0.3, 1, 3, …)."""
    e = math.floor(math.log10(lr) + 1e-9)
    mant = lr / 10**e
    if mant < 2:  # a "1" rung
        return _round(3 * 10 ** (e - 1)), _round(3 * 10**e)
    return _round(10**e), _round(10 ** (e + 1))


def _round(x: float) -> float:
    return float(f"{x:.3g}")


def bracket(
    evaluate: Callable[[float], float],
    grid: tuple[float, ...],
    higher_is_better: bool,
    max_widen: int = MAX_WIDEN,
) -> tuple[float, dict[float, float], bool]:
    """Evaluate ``grid``; widen by one ladder rung past whichever end is best until the best is interior.

    Non-finite scores (diverged runs) rank worst. Returns (best, {lr: score}, bracketed).
    """
    scores: dict[float, float] = {}
    for lr in grid:
        scores[lr] = evaluate(lr)
    widened = {"low": 0, "high": 0}

    def key(lr: float) -> float:
        s = scores[lr]
        if not math.isfinite(s):
            return -math.inf
        return s if higher_is_better else -s

    while True:
        lrs = sorted(scores)
        best = max(lrs, key=key)
        if len(lrs) >= 3 and lrs[0] < best < lrs[-1]:
            return best, scores, True
        side = "low" if best == lrs[0] else "high"
        if widened[side] >= max_widen:
            return best, scores, False
        new = ladder_neighbours(lrs[0])[0] if side == "low" else ladder_neighbours(lrs[-1])[1]
        widened[side] += 1
        scores[new] = evaluate(new)


# ---------------------------------------------------------------------------------- gradient hook
class GradientProbe:
    """Records ``gradient_stats`` and ``gradient_histogram`` at fixed steps (after backward, before clip)."""

    def __init__(self, steps: dict[int, float]) -> None:
        self.steps = steps  # step -> fraction of training
        self.stats: dict[str, dict[str, float]] = {}
        self.hists: dict[str, dict[str, Any]] = {}

    def after_backward(self, trainer: Any, step: int) -> None:
        if step in self.steps and trainer.is_main:
            frac = f"{self.steps[step]:.2f}"
            self.stats[frac] = gradient_stats(trainer.model)
            self.hists[frac] = gradient_histogram(trainer.model)

    def state_dict(self) -> dict[str, Any]:
        return {"stats": json.dumps(self.stats), "hists": json.dumps(self.hists)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats = json.loads(state["stats"])
        self.hists = json.loads(state["hists"])


# ----------------------------------------------------------------------------------------- runner
@dataclass
class Runner:
    plan: TaskPlan
    out: Path
    log: Callable[[str], None] = print
    ran: int = 0
    cached: int = 0
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def key(self, norm: str, opt: str, lr: float, wd: float, seed: int, steps: int) -> str:
        return f"{self.plan.name}-{norm}-{opt}-lr{lr:g}-wd{wd:g}-s{seed}-n{steps}"

    def run(self, norm: str, opt: str, lr: float, wd: float, seed: int, steps: int) -> dict[str, Any]:
        key = self.key(norm, opt, lr, wd, seed, steps)
        cache = RunCache(self.out / "runs")
        if key in self.records:
            return self.records[key]
        rec = cache.load(key)
        if rec is not None:
            self.records[key] = rec
            self.cached += 1
            return rec
        plan = self.plan
        long_run = steps > plan.steps
        evals = 8 if long_run else plan.evals
        work = self.out / "work" / key
        probe_steps = {max(1, round(f * steps)): f for f in FRACTIONS}
        cfg = TrainConfig(
            **plan.base,
            norm=norm,
            optimizer=opt,
            lr=lr,
            weight_decay=wd,
            seed=seed,
            steps=steps,
            warmup_steps=max(1, round(plan.warmup_frac * steps)),
            eval_every=max(1, steps // evals),
            log_every=max(1, steps // 50),
            checkpoint_every=max(1, steps // 8) if long_run else 0,
            final_checkpoint=False,
            threads=1,
            progress=False,
            out_dir=str(work) if long_run else None,
        )
        ckpt = work / "checkpoint.safetensors"
        probe = GradientProbe(probe_steps)
        c0, w0 = time.process_time(), time.perf_counter()
        result = Trainer(cfg, hooks=[probe], resume=str(ckpt) if ckpt.exists() else None).fit()
        cpu_s, wall_s = time.process_time() - c0, time.perf_counter() - w0
        rec = summarise(plan, cfg, result, probe, cpu_s, wall_s)
        rec = cache.save(key, rec)
        shutil.rmtree(work, ignore_errors=True)
        self.records[key] = rec
        self.ran += 1
        self.log(
            f"[{plan.name}] {norm:5s} {opt:5s} lr={lr:<7g} wd={wd:<7g} seed={seed} steps={steps}: "
            f"{plan.metric}={rec['metric']:.4f} ({rec['status']}) cpu {cpu_s:.0f}s wall {wall_s:.0f}s"
        )
        return rec


def summarise(
    plan: TaskPlan, cfg: TrainConfig, result: Any, probe: GradientProbe, cpu_s: float, wall_s: float
) -> dict[str, Any]:
    hist = result.history
    train = [r["train_loss"] for r in hist if r.get("train_loss") is not None]
    first = train[0] if train else math.nan
    diverged = result.status == "diverged" or not train or not math.isfinite(train[-1])
    # Spec §7.1: also diverged if the loss after step 50 exceeds the initial loss.
    late = [r["train_loss"] for r in hist if r.get("train_loss") is not None and r["step"] > 50]
    if late and math.isfinite(first) and late[-1] > first:
        diverged = True
    metric = result.final_test_acc if plan.metric == "test_acc" else result.final_val_loss
    if diverged or metric is None:
        metric = math.nan
    curve = [
        {k: r[k] for k in ("step", "train_loss", "val_loss", "test_loss", "test_acc", "lr") if k in r}
        for r in hist
    ]
    return {
        "config": cfg.to_dict(),
        "status": "diverged" if diverged else result.status,
        "message": result.message,
        "metric": float(metric),
        "final_train_loss": result.final_train_loss,
        "initial_train_loss": first,
        "throughput": result.throughput,
        "throughput_unit": result.throughput_unit,
        "peak_mb": result.peak_mb,
        "optimizer_state_bytes": result.optimizer_state_bytes,
        "n_params": result.n_params,
        "cpu_s": cpu_s,
        "wall_s": wall_s,
        "grad_stats": probe.stats,
        "grad_hists": probe.hists,
        "curve": curve,
        "fingerprint": result.fingerprint,
    }


# ---------------------------------------------------------------------------------------- stages
def sweep_cell(r: Runner, norm: str, opt: str) -> dict[str, Any]:
    """Stage 1 for one cell: bracketed lr sweep, then (SGDW) wd sweep and one lr re-check."""
    plan = r.plan
    wd0 = plan.wd_default[opt]

    def at(wd: float) -> Callable[[float], float]:
        return lambda lr: r.run(norm, opt, lr, wd, 0, plan.steps)["metric"]

    higher = plan.higher_is_better
    best_lr, scores, ok = bracket(at(wd0), plan.lr_grid[opt], higher)
    best_wd = wd0
    grid = {(lr, wd0): s for lr, s in scores.items()}
    if opt == "sgdw":
        wds = list(plan.wd_grid_sgdw)
        for wd in wds:
            grid[(best_lr, wd)] = at(wd)(best_lr)
        for _ in range(MAX_WIDEN):  # widen the decay grid upwards while its largest value wins
            at_lr = {wd: s for (lr, wd), s in grid.items() if lr == best_lr}
            if best_of({(best_lr, wd): s for wd, s in at_lr.items()}, higher)[1] != max(wds):
                break
            wds.append(_round(10 * max(wds)))
            grid[(best_lr, wds[-1])] = at(wds[-1])(best_lr)
        best_lr, best_wd = best_of(grid, higher)
        if best_wd != wd0:  # coordinate descent: bracket the rate again at the new decay
            lo, hi = ladder_neighbours(best_lr)
            _, scores, _ = bracket(at(best_wd), (lo, best_lr, hi), higher)
            grid |= {(lr, best_wd): s for lr, s in scores.items()}
            best_lr, best_wd = best_of(grid, higher)
        lrs_at = sorted(lr for lr, wd in grid if wd == best_wd)
        ok = lrs_at[0] < best_lr < lrs_at[-1]
    return {"norm": norm, "optimizer": opt, "lr": best_lr, "wd": best_wd, "bracketed": ok, "grid": grid}


def best_of(grid: dict[tuple[float, float], float], higher: bool) -> tuple[float, float]:
    def key(k: tuple[float, float]) -> float:
        s = grid[k]
        return -math.inf if not math.isfinite(s) else (s if higher else -s)

    return max(grid, key=key)


def cell_seeds(r: Runner, cell: dict[str, Any], steps: int) -> list[dict[str, Any]]:
    return [r.run(cell["norm"], cell["optimizer"], cell["lr"], cell["wd"], s, steps) for s in SEEDS]


def finite(xs: list[float]) -> list[float]:
    return [x for x in xs if math.isfinite(x)]


def cell_mean(recs: list[dict[str, Any]], higher: bool) -> float:
    vals = finite([x["metric"] for x in recs])
    if len(vals) < len(recs) or not vals:  # a diverged seed ranks the cell last
        return -math.inf if higher else math.inf
    return float(np.mean(vals))


# --------------------------------------------------------------------------------------- analysis
def noise_test(a: list[float], b: list[float]) -> tuple[float, float]:
    """(mean(a) − mean(b), 2 × standard error of that difference)."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    diff = float(np.mean(a) - np.mean(b))
    se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    return diff, 2 * se


def curve_value(rec: dict[str, Any], metric: str, frac: float) -> float:
    """The metric at the first evaluation at or after ``frac`` of training."""
    steps = rec["config"]["steps"]
    pts = [(c["step"], c[metric]) for c in rec["curve"] if c.get(metric) is not None]
    for step, v in pts:
        if step >= frac * steps:
            return float(v)
    return math.nan


def corpus_stats(plan: TaskPlan) -> dict[str, Any]:
    """LM: vocabulary size and the unigram entropy (nats) of the train split — the loss of a model that
    ignores context, i.e. the plateau an LM sits on before it learns to use context."""
    if plan.name != "lm":
        return {}
    from structlearn.data.text import load_text

    data = load_text(plan.base["corpus"], "char", plan.base.get("max_bytes"))
    counts = np.bincount(data.train.numpy().astype(np.int64), minlength=data.vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return {"vocab_size": data.vocab_size, "unigram_entropy": float(-(p * np.log(p)).sum())}


def stalled(rec: dict[str, Any], plan: TaskPlan, h_unigram: float | None) -> bool:
    """Early plateau: at 25 % of training still no better than a context-free model (LM: the unigram
    entropy) or than twice chance (image: accuracy < 0.2)."""
    v = curve_value(rec, plan.metric, 0.25)
    if not math.isfinite(v):
        return True
    if plan.name == "lm":
        return h_unigram is not None and v >= h_unigram
    return v < 0.2


def fmt(x: float, nd: int = 4) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


# ----------------------------------------------------------------------------------------- plots
def plot_sweeps(plan: TaskPlan, cells: list[dict[str, Any]], path: Path) -> None:
    fig, axes = subplots(1, 2, figsize=(10, 3.8))
    for ax, opt in zip(axes, OPTIMIZERS, strict=True):
        for cell in (c for c in cells if c["optimizer"] == opt):
            by_wd: dict[float, list[tuple[float, float]]] = {}
            for (lr, wd), s in cell["grid"].items():
                by_wd.setdefault(wd, []).append((lr, s))
            for wd, pts in sorted(by_wd.items()):
                pts.sort()
                if len(pts) < 2 and wd != cell["wd"]:
                    continue
                xs, ys = zip(*pts, strict=True)
                ax.plot(
                    xs,
                    [y if math.isfinite(y) else np.nan for y in ys],
                    "o-",
                    label=f"{cell['norm']} wd={wd:g}",
                )
        ax.set_xscale("log")
        ax.set_xlabel("peak learning rate")
        ax.set_ylabel(plan.metric)
        ax.set_title(f"{plan.name}: {opt} (seed 0, {plan.steps} steps)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_long_curves(plan: TaskPlan, long: dict[str, list[dict[str, Any]]], path: Path) -> None:
    fig, ax = subplots(figsize=(7, 4.2))
    colors = {"adamw": "tab:blue", "sgdw": "tab:red"}
    for opt, recs in long.items():
        for rec in recs:
            pts = [(c["step"], c[plan.metric]) for c in rec["curve"] if c.get(plan.metric) is not None]
            if pts:
                xs, ys = zip(*pts, strict=True)
                cfg = rec["config"]
                ax.plot(
                    xs, ys, "-", color=colors[opt], alpha=0.8, label=f"{cfg['norm']}+{opt} seed {cfg['seed']}"
                )
    ax.set_xlabel("step")
    ax.set_ylabel(plan.metric)
    ax.set_title(f"{plan.name}: best cell per optimizer at {LONG_FACTOR}× steps")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------- report
def run_task(plan: TaskPlan, out: Path, stages: set[str], log: Callable[[str], None]) -> dict[str, Any]:
    r = Runner(plan, out, log)
    higher = plan.higher_is_better
    t0 = time.perf_counter()
    cells = [sweep_cell(r, norm, opt) for norm in SCHEMES for opt in OPTIMIZERS]
    seeds = {}
    if "seeds" in stages or "long" in stages:
        seeds = {(c["norm"], c["optimizer"]): cell_seeds(r, c, plan.steps) for c in cells}
    long: dict[str, list[dict[str, Any]]] = {}
    best_cells: dict[str, dict[str, Any]] = {}
    if "long" in stages:
        for opt in OPTIMIZERS:
            mine = [c for c in cells if c["optimizer"] == opt]
            sign = 1 if higher else -1
            best = max(mine, key=lambda c: sign * cell_mean(seeds[(c["norm"], opt)], higher))
            best_cells[opt] = best
            long[opt] = cell_seeds(r, best, LONG_FACTOR * plan.steps)
    return {
        "runner": r,
        "cells": cells,
        "seeds": seeds,
        "long": long,
        "best_cells": best_cells,
        "corpus": corpus_stats(plan),
        "wall_s": time.perf_counter() - t0,
    }


def task_report(plan: TaskPlan, res: dict[str, Any], out: Path) -> tuple[str, dict[str, Any]]:
    higher = plan.higher_is_better
    cells, seeds, long, runner = res["cells"], res["seeds"], res["long"], res["runner"]
    recs = list(runner.records.values())
    m = plan.metric
    b = plan.base
    first = recs[0]
    lines = [f"## ({plan.name}) {plan.title}", ""]
    fp = first["fingerprint"]
    if plan.name == "lm":
        model = (
            f"GPT {b['n_layer']} layers, d={b['n_embd']}, {b['n_head']} heads, context {b['block_size']}, "
            f"char-level vocabulary of {res['corpus']['vocab_size']}"
        )
        data = (
            f"corpus `{b['corpus']}` ({fp.get('files')} files, {fp.get('bytes'):,} bytes, sha256 "
            f"{str(fp.get('sha256'))[:12]}…), 90/10 split by position; validation = "
            f"{b['eval_batches']} fixed batches of {b['batch_size']}×{b['block_size']} tokens"
        )
        per_step = f"{b['batch_size']}×{b['block_size']} tokens/step"
    else:
        patch = first["config"]["patch_size"] or "default (7 for 28×28, 4 for MNIST-1D)"
        model = f"ViT {b['n_layer']} layers, d={b['n_embd']}, {b['n_head']} heads, patch {patch}"
        data = (
            f"`{fp.get('dataset')}` ({fp.get('n_train')} train / {fp.get('n_test')} test images of "
            f"{fp.get('image_shape')}), ±2 px shift augmentation; metric on the full test split"
        )
        per_step = f"batch {b['batch_size']}"
    lines += [
        f"- model: {model}, {first['n_params']:,} parameters; fp32, 1 thread",
        f"- data: {data}",
        f"- budget: {plan.steps} steps ({per_step}), linear warmup {plan.warmup_frac:.0%} then cosine to "
        f"{b['min_lr_frac']} × peak; {LONG_FACTOR}× stage: {LONG_FACTOR * plan.steps} steps; grad clip "
        f"{b['grad_clip']}; AdamW betas {b['betas']}, wd {plan.wd_default['adamw']}; SGDW momentum 0.9",
        f"- metric: final {m} ({'higher' if higher else 'lower'} is better); seeds {list(SEEDS)}; "
        f"runs: {runner.ran} trained now, {runner.cached} from cache",
        "",
        "### Stage 1 — learning-rate (and SGDW weight-decay) sweep, seed 0",
        "",
    ]
    rows = []
    for c in cells:
        for (lr, wd), s in sorted(c["grid"].items()):
            mark = " **best**" if (lr, wd) == (c["lr"], c["wd"]) else ""
            rows.append([c["norm"], c["optimizer"], f"{lr:g}", f"{wd:g}", fmt(s) + mark])
    lines += [markdown_table(["scheme", "optimizer", "lr", "wd", m], rows), ""]
    unb = [f"{c['norm']}+{c['optimizer']}" for c in cells if not c["bracketed"]]
    lines += [
        "Every best rate is interior to its sweep."
        if not unb
        else f"Not bracketed after {MAX_WIDEN} widenings per side: {', '.join(unb)}.",
        "",
    ]
    data: dict[str, Any] = {"plan": {"base": b, "steps": plan.steps, "metric": m}, "cells": []}
    if seeds:
        lines += ["### Stage 2 — 3 seeds at each cell's best setting", ""]
        rows = []
        for c in cells:
            rs = seeds[(c["norm"], c["optimizer"])]
            vals = [x["metric"] for x in rs]
            n_div = sum(x["status"] == "diverged" for x in rs)
            gs = {f: [x["grad_stats"].get(f"{f:.2f}", {}) for x in rs] for f in FRACTIONS}

            def g(f: float, k: str, gs: dict = gs) -> str:
                v = finite([d[k] for d in gs[f] if k in d])
                return f"{np.mean(v):.3g}" if v else "n/a"

            rows.append(
                [
                    c["norm"],
                    c["optimizer"],
                    f"{c['lr']:g}",
                    f"{c['wd']:g}",
                    mean_std(vals, ".4f"),
                    " / ".join(fmt(v) for v in vals),
                    n_div,
                    " / ".join(g(f, "q999_over_q50") for f in FRACTIONS),
                    " / ".join(g(f, "excess_kurtosis") for f in FRACTIONS),
                    " / ".join(g(f, "top1_energy_share") for f in FRACTIONS),
                    " / ".join(g(f, "grad_norm_max_over_median") for f in FRACTIONS),
                ]
            )
            data["cells"].append(
                {
                    "norm": c["norm"],
                    "optimizer": c["optimizer"],
                    "lr": c["lr"],
                    "wd": c["wd"],
                    "bracketed": c["bracketed"],
                    "values": vals,
                    "diverged": n_div,
                    "grad_stats": {f"{f:.2f}": gs[f] for f in FRACTIONS},
                    "grid": [[lr, wd, s] for (lr, wd), s in c["grid"].items()],
                }
            )
        lines += [
            markdown_table(
                [
                    "scheme",
                    "optimizer",
                    "lr",
                    "wd",
                    f"{m} mean ± std",
                    "per seed",
                    "diverged",
                    "q99.9/q50 @10/50/90%",
                    "excess kurtosis",
                    "top-1% energy",
                    "max/median ‖g_l‖",
                ],
                rows,
            ),
            "",
            "Gradient statistics: mean over the 3 seeds, pooled ≥2-D weights, after backward and before "
            "clipping, at 10 / 50 / 90 % of training.",
            "",
        ]
        lines += predictions(plan, cells, seeds)
    if long:
        lines += long_section(plan, res)
        data["long"] = {
            opt: {
                "cell": {k: res["best_cells"][opt][k] for k in ("norm", "lr", "wd")},
                "values": [x["metric"] for x in rs],
            }
            for opt, rs in long.items()
        }
    lines += resources_section(plan, recs)
    plot_sweeps(plan, cells, out / f"{plan.name}_lr_sweep.png")
    lines += [f"![lr sweep]({plan.name}_lr_sweep.png)", ""]
    if seeds:
        hists = {}
        for opt in OPTIMIZERS:
            for norm in SCHEMES:
                rec = seeds[(norm, opt)][0]
                h = rec["grad_hists"].get("0.50")
                if h:
                    hists[f"{norm}+{opt}"] = h
        if hists:
            plot_gradient_histograms(
                hists,
                out / f"{plan.name}_grad_ccdf.png",
                title=f"{plan.name}: |gradient entries| at 50 % (seed 0)",
            )
            plot_gradient_histograms(
                hists,
                out / f"{plan.name}_grad_ccdf_normalized.png",
                normalize=True,
                title=f"{plan.name}: |g| / median at 50 % (seed 0)",
            )
            lines += [
                f"![gradient CCDF]({plan.name}_grad_ccdf.png) "
                f"![normalized]({plan.name}_grad_ccdf_normalized.png)",
                "",
            ]
    if long:
        plot_long_curves(plan, long, out / f"{plan.name}_long_curves.png")
        lines += [f"![4x curves]({plan.name}_long_curves.png)", ""]
    return "\n".join(lines), data


def predictions(plan: TaskPlan, cells: list[dict[str, Any]], seeds: dict) -> list[str]:
    higher = plan.higher_is_better
    vals = {k: [x["metric"] for x in v] for k, v in seeds.items()}
    better = "higher" if higher else "lower"
    best_adam = max(
        (("preln", "adamw"), ("dnt", "adamw")),
        key=lambda k: (1 if higher else -1) * cell_mean(seeds[k], higher),
    )

    def cmp(a: tuple[str, str], bb: tuple[str, str]) -> str:
        d, ci = noise_test(vals[a], vals[bb])
        if not math.isfinite(d):
            return "n/a (a diverged seed)"
        verdict = "within noise" if abs(d) <= ci else ("ahead" if (d > 0) == higher else "behind")
        return f"Δ = {d:+.4f} (2·SE {ci:.4f}) → {'+'.join(a)} {verdict}"

    gap_pre = cmp(("preln", "sgdw"), ("preln", "adamw"))
    gap_dnt = cmp(("dnt", "sgdw"), best_adam)
    lines = [
        f"Paper predictions (mean over 3 seeds, Δ = first − second, {better} is better; 'within noise' = "
        "|Δ| ≤ 2 standard errors of the difference):",
        "",
        f"- (a) preln+SGDW clearly behind preln+AdamW: {gap_pre}",
        f"- (b) dnt+SGDW within noise of the best AdamW cell ({'+'.join(best_adam)}): {gap_dnt}",
        f"- (c) dnt helps AdamW: {cmp(('dnt', 'adamw'), ('preln', 'adamw'))}",
        f"- (c') dnt helps SGDW: {cmp(('dnt', 'sgdw'), ('preln', 'sgdw'))}",
    ]
    for opt in OPTIMIZERS:
        qs = {}
        for norm in SCHEMES:
            v = finite(
                [x["grad_stats"].get("0.50", {}).get("q999_over_q50", math.nan) for x in seeds[(norm, opt)]]
            )
            qs[norm] = float(np.mean(v)) if v else math.nan
        lines.append(
            f"- (d) heavy tails smaller under dnt ({opt}, q99.9/q50 at 50 %): preln {fmt(qs['preln'], 2)} vs "
            f"dnt {fmt(qs['dnt'], 2)}"
        )
    lrs = {c["norm"]: c["lr"] for c in cells if c["optimizer"] == "sgdw"}
    lines += [
        f"- best SGDW rate: preln {lrs['preln']:g}, dnt {lrs['dnt']:g} (paper: dnt tolerates 0.5–1.0)",
        "",
    ]
    return lines


def long_section(plan: TaskPlan, res: dict[str, Any]) -> list[str]:
    m, higher = plan.metric, plan.higher_is_better
    h_uni = res["corpus"].get("unigram_entropy")
    lines = [
        f"### Stage 3 — each optimizer's best cell at {LONG_FACTOR}× steps ({LONG_FACTOR * plan.steps})",
        "",
    ]
    if h_uni is not None:
        lines += [f"Unigram entropy of the train split (loss of a context-free model): {h_uni:.4f} nats.", ""]
    rows = []
    for opt, recs in res["long"].items():
        c = res["best_cells"][opt]
        short = res["seeds"][(c["norm"], opt)]
        for rec, srec in zip(recs, short, strict=True):
            rows.append(
                [
                    f"{c['norm']}+{opt}",
                    f"{c['lr']:g}",
                    f"{c['wd']:g}",
                    rec["config"]["seed"],
                    fmt(curve_value(rec, m, 0.25)),
                    fmt(curve_value(rec, m, 0.5)),
                    fmt(rec["metric"]),
                    fmt(srec["metric"]),
                    "yes" if stalled(rec, plan, h_uni) else "no",
                    rec["status"],
                ]
            )
    lines += [
        markdown_table(
            [
                "cell",
                "lr",
                "wd",
                "seed",
                f"{m} @25%",
                f"{m} @50%",
                f"{m} final (4×)",
                f"{m} final (1×)",
                "early plateau",
                "status",
            ],
            rows,
        ),
        "",
    ]
    a = [x["metric"] for x in res["long"]["adamw"]]
    s = [x["metric"] for x in res["long"]["sgdw"]]
    a1 = [x["metric"] for x in res["seeds"][(res["best_cells"]["adamw"]["norm"], "adamw")]]
    s1 = [x["metric"] for x in res["seeds"][(res["best_cells"]["sgdw"]["norm"], "sgdw")]]
    d4, ci4 = noise_test(s, a)
    d1, ci1 = noise_test(s1, a1)
    n_stall = sum(stalled(x, plan, h_uni) for x in res["long"]["sgdw"])
    n_stall_a = sum(stalled(x, plan, h_uni) for x in res["long"]["adamw"])
    lines += [
        f"- SGDW − AdamW (best cells), 1×: Δ = {fmt(d1)} (2·SE {fmt(ci1)}); {LONG_FACTOR}×: Δ = {fmt(d4)} "
        f"(2·SE {fmt(ci4)}); {'higher' if higher else 'lower'} is better",
        f"- AdamW 4× {mean_std(a, '.4f')}, SGDW 4× {mean_std(s, '.4f')}",
        f"- early plateaus: SGDW {n_stall}/{len(s)} seeds, AdamW {n_stall_a}/{len(a)} seeds "
        "(definition in the script: `stalled`)",
        "",
    ]
    return lines


def resources_section(plan: TaskPlan, recs: list[dict[str, Any]]) -> list[str]:
    rows = []
    unit = recs[0]["throughput_unit"]
    for norm in SCHEMES:
        for opt in OPTIMIZERS:
            rs = [
                x
                for x in recs
                if x["config"]["norm"] == norm
                and x["config"]["optimizer"] == opt
                and x["config"]["steps"] == plan.steps
            ]
            if not rs:
                continue
            steps = plan.steps
            rows.append(
                [
                    norm,
                    opt,
                    len(rs),
                    f"{np.median([x['throughput'] for x in rs]):.0f}",
                    f"{np.median([x['cpu_s'] for x in rs]) / steps * 1e3:.1f}",
                    f"{np.median([x['peak_mb'] for x in rs]):.0f}",
                    rs[0]["optimizer_state_bytes"],
                    rs[0]["n_params"],
                ]
            )
    return [
        "### Throughput, memory, optimizer state",
        "",
        markdown_table(
            [
                "scheme",
                "optimizer",
                "runs",
                f"median {unit} (wall)",
                "median CPU ms/step (incl. eval)",
                "median peak MB",
                "optimizer state bytes",
                "params",
            ],
            rows,
        ),
        "",
        "Wall-clock throughput is from the engine and is depressed by other jobs on the shared machine; "
        "`benchmarks/results/dnt_step/` has the interleaved, CPU-time step-time comparison.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny models and step counts: a smoke run")
    p.add_argument("--tasks", nargs="+", default=["lm", "image"], choices=["lm", "image"])
    p.add_argument(
        "--stages", nargs="+", default=["sweep", "seeds", "long"], choices=["sweep", "seeds", "long"]
    )
    p.add_argument("--out", type=Path, default=None, help=f"default {OUT} ({QUICK_OUT} with --quick)")
    args = p.parse_args(argv)
    out = args.out or (QUICK_OUT if args.quick else OUT)
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bodies, data = [], {}
    for name in args.tasks:
        plan = lm_plan(args.quick) if name == "lm" else image_plan(args.quick)
        res = run_task(plan, out, set(args.stages), log)
        body, d = task_report(plan, res, out)
        bodies.append(body)
        data[name] = d | {"wall_s": res["wall_s"]}
    intro = (
        "Reproduction of the DNT claim (arXiv 2507.17501): with InputNorm + PreNorm(attn) + QK-norm + "
        "MidNorm, momentum SGDW trains Transformers about as well as AdamW, while a standard Pre-LN "
        "model needs AdamW. Grid {preln, dnt} × {AdamW, SGDW}; protocol in `benchmarks/bench_dnt.py`. "
        f"Total wall time of this invocation: {(time.perf_counter() - t0) / 60:.1f} min (cached runs "
        "are not re-trained; per-run CPU and wall seconds are in runs/*.json)."
    )
    write_report(
        out,
        "dnt",
        "DNT reproduction: {preln, dnt} × {AdamW, SGDW}",
        intro + "\n\n" + "\n\n".join(bodies),
        data,
    )
    print(f"wrote {out / 'dnt.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
