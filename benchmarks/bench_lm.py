"""DNT against the optimizers people use, on nanoGPT's shakespeare-char (issue 12; arXiv 2507.17501).

Parts (``--part``, default ``grid``):

- ``grid``: {preln, dnt} × {AdamW, SGDW, Muon} at nanoGPT's CPU setting (preset
  ``nanogpt-shakespeare-char-cpu``: 4 layers × 4 heads × 128, context 64, batch 12, 2,000 iterations,
  dropout 0, LayerNorm, warmup 100, cosine to 10 %, clip 1.0). Stage 1: a 3-value LR sweep per cell
  (seed 0) on a ×3 ladder, widened one rung (``--widen``, default 1) where the best LR is at the edge;
  a best LR still at the edge is flagged. Stage 2: seeds 1 and 2 at the best LR (+ seed 0 of the
  sweep). Final validation loss on the whole val split (``eval_full``: 1,742 windows of 64 characters,
  nanoGPT's last 10 %), optimizer-state bytes and training tokens/s per cell.
  Muon = ``torch.optim.Muon`` (Nesterov 0.95, 5 Newton–Schulz steps, torch's per-shape LR scaling) on
  the 2-D hidden matrices + AdamW (lr 1e-3, betas 0.9/0.99) on embeddings, gains (its authors' split).
- ``throughput``: our GPT (preln and dnt, LayerNorm) against nanoGPT's own ``model.py`` at an identical
  config (vocab 65, bias-free, dropout 0), the same AdamW (foreach) for both, interleaved in one
  process (rounds of ``--tp-steps`` steps in rotating order; median tokens/s), fp32 and bf16 autocast;
  ``--tp-compile``: every model under ``torch.compile`` (does fusion hide DNT's extra norms?).
  Needs ``--nanogpt-dir`` holding nanoGPT's ``model.py`` (not part of the project); skipped without it.
- ``gpu-config``: nanoGPT's GPU config (preset ``nanogpt-shakespeare-char``: 6L × 6H × 384, context 256,
  batch 64, dropout 0.2) for ``--iters`` steps in bf16: preln+AdamW (lr 1e-3) vs dnt+SGDW
  (``--sgdw-lr``), val loss on the whole split and tokens/s.
- ``wd-sweep``: SGDW weight decay × LR (``--sweep-lrs``, ``--sweep-wds``; optionally × ``--sweep-momenta``
  × ``--sweep-clips``) at the grid's CPU setting, seed 0, then ``--seeds`` at each norm's best
  configuration, against the grid cache's best AdamW cell (spec dnt.md §7.1: decay and LR are coupled
  for weights that feed a norm; clipping is itself a heavy-tail remedy).
- ``budget``: the cells of ``--budget-cells`` (dnt+SGDW, dnt/preln+AdamW, dnt/preln+Muon) at several run
  lengths (``--budget-iters``), their 2,000-step optimal LRs fixed: does SGD's gap to the best AdamW cell
  shrink with the budget, and does DNT still help AdamW and Muon?
- ``lr-scales``: the embedding tables' and the norm gains' learning rates as multiples of the LR
  (``--scale-grid``), for dnt+SGDW (Nesterov) and the best AdamW cell alike: seed 0 over the grid, then
  ``--seeds`` at each cell's best pair and unscaled, paired by seed.
- ``bound-overhead``: step time of AdamW² (certified spectral bound, τ = 0.02) against AdamW on the
  CPU-config GPT, interleaved, at batch 12 and 64.

Each run is cached as one JSON under ``<out>/runs/`` (written atomically), so a killed invocation
resumes where it stopped; ``--report-only`` rebuilds a report from the cache. ``--workers N`` runs N
processes in parallel (on a GPU several small runs share the device). Reports: ``<out>/<part>[_cuda].md``
and ``.json`` with the machine and the command.

    python benchmarks/bench_lm.py --quick --workers 2           # smoke run of the grid (~1 min)
    python benchmarks/bench_lm.py --part throughput --nanogpt-dir .ref/nanogpt
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from structlearn.utils.harness import RunCache, log, machine_info, markdown_table, mean_std, write_report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lm"
NORMS = ("preln", "dnt")
OPTIMIZERS = ("adamw", "sgdw", "muon")
# Stage-1 LR ladders (×≈3). AdamW brackets nanoGPT's 1e-3; SGDW starts at the stdlib grid's best 0.1
# (benchmarks/results/dnt); Muon around its authors' 0.02–0.05.
LR_GRID: dict[str, tuple[float, ...]] = {
    "adamw": (1e-3, 3e-3, 1e-2),
    "sgdw": (0.03, 0.1, 0.3),
    "muon": (0.01, 0.03, 0.1),
}
# Weight decay per optimizer: AdamW nanoGPT's 0.1; SGDW 5e-3 (the stdlib grid's best, results/dnt);
# Muon 0 on its matrices (modded-nanogpt's records; torch's default 0.1 is for its lr scale).
WEIGHT_DECAY = {"adamw": 0.1, "sgdw": 5e-3, "muon": 0.0}
SEEDS = (0, 1, 2)
NANOGPT_CPU_VAL = 1.88  # karpathy/nanoGPT README, CPU run (val ≈ 1.88)
NANOGPT_GPU_VAL = 1.4697  # karpathy/nanoGPT README, GPU config at 5,000 iterations
GOAL_SGDW_GAP = 0.02  # issue 12: dnt+SGDW within 0.02 nats of the best AdamW cell


def _fmt_lr(lr: float) -> str:
    return f"{lr:.3g}"


# --------------------------------------------------------------------------------------------- runs
def run_key(spec: dict[str, Any]) -> str:
    """The run's name in the cache ``<out>/runs``: ``<part>_<device>_<dtype>_it<iters>/<arm>_s<seed>``."""
    tag = f"{spec['part']}_{spec['device']}_{spec['dtype']}_it{spec['iters']}"
    wd = f"_wd{spec['weight_decay']:g}" if "weight_decay" in spec else ""  # only the wd-sweep sets it
    # momentum / clip only where the sweep moves them off the preset's, so earlier cache names still hold
    wd += f"_mu{spec['momentum']:g}" if "momentum" in spec else ""
    wd += f"_clip{spec['grad_clip']:g}" if "grad_clip" in spec else ""
    wd += "_nesterov" if spec.get("nesterov") else ""
    wd += f"_emb{spec['embedding_lr_scale']:g}" if "embedding_lr_scale" in spec else ""
    wd += f"_gain{spec['gain_lr_scale']:g}" if "gain_lr_scale" in spec else ""
    return f"{tag}/{spec['norm']}_{spec['optimizer']}_lr{_fmt_lr(spec['lr'])}{wd}_s{spec['seed']}"


def warmup_for(iters: int, preset_warmup: int = 100, preset_iters: int = 2000) -> int:
    """nanoGPT's 100 warmup steps of 2,000 (5 %), scaled to shorter runs (at least 1 step)."""
    return max(1, min(preset_warmup, round(preset_warmup * iters / preset_iters), iters - 1))


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration through ``Trainer``; the record that is cached."""
    from structlearn.train.config import preset_config
    from structlearn.train.engine import Trainer

    torch.set_num_threads(int(spec["threads"]))
    preset = spec["preset"]
    iters = int(spec["iters"])
    extra: dict[str, Any] = {}
    if spec["optimizer"] == "muon":
        extra["optimizer_kwargs"] = {"adam_lr": 1e-3}
    if "momentum" in spec and spec["optimizer"] == "adamw":  # AdamW's momentum is β₁ (β₂ the preset's)
        extra["betas"] = (float(spec["momentum"]), float(preset_config(preset).betas[1]))
    elif "momentum" in spec:
        extra["momentum"] = float(spec["momentum"])
    if "grad_clip" in spec:  # 0 = no clipping
        extra["grad_clip"] = float(spec["grad_clip"]) or None
    if spec.get("nesterov"):
        extra["nesterov"] = True
    for key in ("embedding_lr_scale", "gain_lr_scale"):
        if key in spec:
            extra[key] = float(spec[key])
    cfg = preset_config(
        preset,
        norm=spec["norm"],
        optimizer=spec["optimizer"],
        lr=float(spec["lr"]),
        weight_decay=float(spec.get("weight_decay", WEIGHT_DECAY[spec["optimizer"]])),
        seed=int(spec["seed"]),
        steps=iters,
        warmup_steps=warmup_for(iters),
        eval_every=0,
        eval_full=True,
        eval_batch_size=int(spec.get("eval_batch_size", 64)),
        log_every=max(1, iters // 20),
        device=spec["device"],
        bf16=spec["dtype"] == "bf16",
        out_dir=None,
        progress=False,
        threads=int(spec["threads"]),
        final_checkpoint=False,
        **extra,
    )
    rec: dict[str, Any] = {k: spec[k] for k in ("part", "norm", "optimizer", "lr", "seed", "iters")}
    rec.update(device=spec["device"], dtype=spec["dtype"], preset=preset, weight_decay=cfg.weight_decay)
    momentum = cfg.betas[0] if spec["optimizer"] == "adamw" else cfg.momentum
    rec.update(momentum=momentum, grad_clip=cfg.grad_clip or 0.0, nesterov=cfg.nesterov)
    rec.update(embedding_lr_scale=cfg.embedding_lr_scale, gain_lr_scale=cfg.gain_lr_scale)
    t0 = time.perf_counter()
    try:
        result = Trainer(cfg).fit()
        rec.update(
            status=result.status,
            val_loss=result.final_val_loss,
            train_loss=result.final_train_loss,
            tokens_per_s=result.tokens_per_s,
            optimizer_state_bytes=result.optimizer_state_bytes,
            n_params=result.n_params,
            train_s=result.train_s,
            curve=[[r["step"], r.get("train_loss")] for r in result.history if "train_loss" in r],
        )
    except Exception as exc:  # recorded, not fatal: one bad run must not stop the grid
        rec.update(status="error", error=f"{type(exc).__name__}: {exc}"[:500])
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def _worker(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if spec.get("shakespeare"):
        os.environ["STRUCTLEARN_SHAKESPEARE"] = spec["shakespeare"]
    rec = run_one(spec)
    RunCache(spec["cache"]).save(spec["key"], rec)  # atomic: a killed run leaves no half-written entry
    return spec, rec


def run_many(args: argparse.Namespace, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the specs not yet cached (``args.workers`` processes); return every spec's record."""
    cache = RunCache(Path(args.out) / "runs")
    todo = []
    for s in specs:
        s["cache"], s["key"] = str(cache.root), run_key(s)
        if not cache.has(s["key"]):
            todo.append(s)
    if todo and not args.report_only:
        log(f"{len(todo)} run(s) to do, {len(specs) - len(todo)} cached, {args.workers} worker(s)")
        if args.workers <= 1:
            for s in todo:
                _, rec = _worker(s)
                _log_run(rec)
        else:
            with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=4) as pool:
                for _, rec in pool.imap_unordered(_worker, todo):
                    _log_run(rec)
    return [rec for s in specs if (rec := cache.load(s["key"])) is not None]


def _log_run(rec: dict[str, Any]) -> None:
    wd = f" wd {rec['weight_decay']:g}" if rec.get("part") == "wd-sweep" else ""
    wd += f" μ {rec.get('momentum')} clip {rec.get('grad_clip')}" if rec.get("part") == "wd-sweep" else ""
    what = f"{rec['norm']}+{rec['optimizer']} lr {_fmt_lr(rec['lr'])}{wd} seed {rec['seed']}"
    if rec.get("status") == "error":
        log(f"  {what}: ERROR {rec['error'][:120]}")
    else:
        log(f"  {what}: {rec['status']} val {rec.get('val_loss')} ({rec['wall_s']:.0f} s)")


def _threads(args: argparse.Namespace) -> int:
    if args.threads:
        return args.threads
    return max(1, (os.cpu_count() or 1) // max(1, args.workers)) if args.device == "cpu" else 2


def _spec(
    args: argparse.Namespace, part: str, preset: str, norm: str, opt: str, lr: float, seed: int
) -> dict:
    return {
        "part": part,
        "preset": preset,
        "norm": norm,
        "optimizer": opt,
        "lr": float(lr),
        "seed": int(seed),
        "iters": int(args.iters),
        "device": args.device,
        "dtype": args.dtype,
        "threads": _threads(args),
        "shakespeare": os.environ.get("STRUCTLEARN_SHAKESPEARE", ""),
    }


def _val(rec: dict[str, Any] | None) -> float:
    """Validation loss for ranking; a diverged or failed run ranks last."""
    if not rec or rec.get("status") not in ("completed", "stopped"):
        return math.inf
    v = rec.get("val_loss")
    return float(v) if v is not None and math.isfinite(float(v)) else math.inf


# --------------------------------------------------------------------------------------------- grid
def part_grid(args: argparse.Namespace) -> Path:
    preset = "nanogpt-shakespeare-char-cpu"
    cells = [(n, o) for n in args.norms for o in args.optimizers]
    ladders = {c: list(LR_GRID[c[1]]) for c in cells}
    t0 = time.perf_counter()
    # Stage 1: the sweep, widened one rung at a time where the best LR sits at an edge.
    for rnd in range(args.widen + 1):
        specs = [_spec(args, "grid", preset, n, o, lr, 0) for (n, o) in cells for lr in ladders[(n, o)]]
        recs = run_many(args, specs)
        by = {(r["norm"], r["optimizer"], r["lr"]): r for r in recs}
        grown = False
        for c in cells:
            lrs = sorted(ladders[c])
            vals = [_val(by.get((*c, lr))) for lr in lrs]
            best = int(np.argmin(vals))
            if rnd == args.widen or not math.isfinite(vals[best]):
                continue
            if best == 0:
                ladders[c].append(lrs[0] / 3)
                grown = True
            elif best == len(lrs) - 1:
                ladders[c].append(lrs[-1] * 3)
                grown = True
        if not grown:
            break
    specs = [_spec(args, "grid", preset, n, o, lr, 0) for (n, o) in cells for lr in ladders[(n, o)]]
    recs = run_many(args, specs)
    by = {(r["norm"], r["optimizer"], r["lr"]): r for r in recs}
    best_lr: dict[tuple[str, str], float] = {}
    for c in cells:
        lrs = sorted(ladders[c])
        vals = [_val(by.get((*c, lr))) for lr in lrs]
        if any(math.isfinite(v) for v in vals):
            best_lr[c] = lrs[int(np.argmin(vals))]
    # Stage 2: the other seeds at each cell's best LR.
    seeds = [_spec(args, "grid", preset, n, o, best_lr[(n, o)], s) for (n, o) in best_lr for s in args.seeds]
    seed_recs = run_many(args, seeds)
    wall = time.perf_counter() - t0
    return grid_report(args, cells, ladders, by, best_lr, seed_recs, wall)


def grid_report(
    args: argparse.Namespace,
    cells: list[tuple[str, str]],
    ladders: dict[tuple[str, str], list[float]],
    by: dict[tuple[str, str, float], dict[str, Any]],
    best_lr: dict[tuple[str, str], float],
    seed_recs: list[dict[str, Any]],
    wall_s: float,
) -> Path:
    flags: list[str] = []
    sweep_rows = []
    for c in cells:
        lrs = sorted(ladders[c])
        vals = [_val(by.get((*c, lr))) for lr in lrs]
        cols = ", ".join(
            f"{_fmt_lr(lr)}: {v:.4f}"
            if math.isfinite(v)
            else f"{_fmt_lr(lr)}: {by.get((*c, lr), {}).get('status', 'missing')}"
            for lr, v in zip(lrs, vals, strict=True)
        )
        note = ""
        if c in best_lr:
            i = lrs.index(best_lr[c])
            if i in (0, len(lrs) - 1):
                note = "⚠ best LR at the sweep's edge"
                flags.append(
                    f"{c[0]}+{c[1]}: best LR {_fmt_lr(best_lr[c])} at the edge of {list(map(_fmt_lr, lrs))}"
                )
        else:
            note = "no finished run"
            flags.append(f"{c[0]}+{c[1]}: no finished sweep run")
        sweep_rows.append([f"{c[0]}+{c[1]}", cols, _fmt_lr(best_lr[c]) if c in best_lr else "–", note])
    cell_stats: dict[str, dict[str, Any]] = {}
    seed_rows = []
    for c in cells:
        if c not in best_lr:
            continue
        rs = sorted(
            [r for r in seed_recs if (r["norm"], r["optimizer"]) == c and r["lr"] == best_lr[c]],
            key=lambda r: r["seed"],
        )
        ok = [r for r in rs if math.isfinite(_val(r))]
        bad = [r for r in rs if not math.isfinite(_val(r))]
        vals = [_val(r) for r in ok]
        tps = [r["tokens_per_s"] for r in ok if r.get("tokens_per_s")]
        state = ok[0]["optimizer_state_bytes"] if ok else None
        nparam = ok[0]["n_params"] if ok else None
        key = f"{c[0]}+{c[1]}"
        cell_stats[key] = {
            "lr": best_lr[c],
            "val": vals,
            "seeds": [r["seed"] for r in ok],
            "mean": float(np.mean(vals)) if vals else math.nan,
            "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan,
            "failed": [r["seed"] for r in bad],
            "state_bytes": state,
            "n_params": nparam,
            "tokens_per_s": float(np.mean(tps)) if tps else math.nan,
        }
        seed_rows.append(
            [
                key,
                _fmt_lr(best_lr[c]),
                mean_std(vals, ".4f") if vals else "–",
                ", ".join(f"{r['seed']}: {_val(r):.4f}" for r in ok) or "–",
                len(bad),
                f"{state / 2**20:.2f} ({state / nparam:.1f} B/param)" if state and nparam else "–",
                mean_std(tps, ".0f") if tps else "–",
            ]
        )
    lines = [
        f"Tiny Shakespeare, char level (65 symbols + 1 reserved id), nanoGPT's split; preset "
        f"`nanogpt-shakespeare-char-cpu` at {args.iters} iterations (warmup {warmup_for(args.iters)}), "
        f"device {args.device}, {args.dtype}. Val loss = mean next-character loss over the whole val split "
        f"(consecutive windows, `eval_full`). Weight decay: AdamW {WEIGHT_DECAY['adamw']}, SGDW "
        f"{WEIGHT_DECAY['sgdw']} (μ 0.9), Muon {WEIGHT_DECAY['muon']} (its AdamW part: lr 1e-3). "
        f"Stage 1 seed 0; stage 2 seeds {', '.join(map(str, args.seeds))} at each cell's best LR "
        "(seed 0 is the sweep run: the means carry a small selection bias, equal for every cell).",
        "",
        "## Stage 1 — LR sweep (seed 0, final val loss)",
        "",
        markdown_table(["cell", "LR: val loss", "best LR", "note"], sweep_rows),
        "",
        "## Stage 2 — seeds at the best LR",
        "",
        markdown_table(
            ["cell", "LR", "val loss mean ± std", "per seed", "failed", "optimizer state MiB", "tokens/s"],
            seed_rows,
        ),
        "",
        "## Against the goals",
        "",
    ]
    goals = goal_lines(cell_stats, args.iters)
    lines += [f"- {g}" for g in goals] + [""]
    lines += ["## Flags", ""] + ([f"- {f}" for f in flags] or ["- none"]) + [""]
    lines.append(f"Wall time of this invocation (cached runs not repeated): {wall_s / 60:.1f} min.")
    data = {
        "iters": args.iters,
        "device": args.device,
        "dtype": args.dtype,
        "seeds": list(args.seeds),
        "ladders": {f"{n}+{o}": sorted(v) for (n, o), v in ladders.items()},
        "sweep": {f"{k[0]}+{k[1]}@{_fmt_lr(k[2])}": _val(r) for k, r in by.items()},
        "cells": cell_stats,
        "goals": goals,
        "flags": flags,
    }
    name = (
        "grid"
        + ("" if args.device == "cpu" else f"_{args.device}")
        + ("" if args.dtype == "fp32" else f"_{args.dtype}")
    )
    return write_report(
        Path(args.out), name, "LM grid: {preln, dnt} × {AdamW, SGDW, Muon} (issue 12)", "\n".join(lines), data
    )


def goal_lines(cells: dict[str, dict[str, Any]], iters: int) -> list[str]:
    out = []

    def se(c: dict[str, Any]) -> float:
        n = len(c["val"])
        return c["std"] / math.sqrt(n) if n > 1 and math.isfinite(c["std"]) else math.nan

    ref = cells.get("preln+adamw")
    if ref and ref["val"]:
        tag = "" if iters == 2000 else f" (at {iters} iterations, nanoGPT's figure is at 2,000)"
        out.append(
            f"preln+AdamW {ref['mean']:.4f} ± {ref['std']:.4f} (n={len(ref['val'])}) vs nanoGPT's ≈ "
            f"{NANOGPT_CPU_VAL}: Δ = {ref['mean'] - NANOGPT_CPU_VAL:+.4f}{tag}"
        )
    adam = [k for k in cells if k.endswith("+adamw") and cells[k]["val"]]
    if adam and cells.get("dnt+sgdw", {}).get("val"):
        best = min(adam, key=lambda k: cells[k]["mean"])
        d = cells["dnt+sgdw"]["mean"] - cells[best]["mean"]
        two_se = 2 * math.sqrt(se(cells["dnt+sgdw"]) ** 2 + se(cells[best]) ** 2)
        verdict = "met" if d <= GOAL_SGDW_GAP else "NOT met"
        out.append(
            f"dnt+SGDW − best AdamW cell ({best}) = {d:+.4f} nats (2·SE {two_se:.4f}); goal ≤ "
            f"{GOAL_SGDW_GAP}: {verdict}"
        )
    if cells.get("preln+sgdw", {}).get("val") and cells.get("dnt+sgdw", {}).get("val"):
        d = cells["dnt+sgdw"]["mean"] - cells["preln+sgdw"]["mean"]
        out.append(f"DNT effect on SGDW: dnt − preln = {d:+.4f} nats")
    if cells.get("preln+muon", {}).get("val") and cells.get("dnt+muon", {}).get("val"):
        d = cells["dnt+muon"]["mean"] - cells["preln+muon"]["mean"]
        two_se = 2 * math.sqrt(se(cells["dnt+muon"]) ** 2 + se(cells["preln+muon"]) ** 2)
        helps = "helps" if d < -two_se else ("hurts" if d > two_se else "no resolved effect")
        out.append(f"Does DNT help Muon? dnt − preln = {d:+.4f} nats (2·SE {two_se:.4f}): {helps}")
    if cells.get("preln+adamw", {}).get("val") and cells.get("dnt+adamw", {}).get("val"):
        d = cells["dnt+adamw"]["mean"] - cells["preln+adamw"]["mean"]
        out.append(f"DNT effect on AdamW: dnt − preln = {d:+.4f} nats")
    return out


# ----------------------------------------------------------------------------------------- throughput
def load_nanogpt(path: str | None) -> Any:
    """nanoGPT's ``model.py`` as a module, or None when ``path`` has none."""
    if not path:
        return None
    f = Path(path) / "model.py"
    if not f.is_file():
        return None
    spec = importlib.util.spec_from_file_location("nanogpt_model", f)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["nanogpt_model"] = mod  # its @dataclass needs the module registered
    spec.loader.exec_module(mod)
    return mod


THROUGHPUT_CONFIGS = {
    "cpu-config": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "batch": 12},
    "gpu-config": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "batch": 64},
}


def _build(kind: str, c: dict[str, Any], nano: Any, device: torch.device) -> torch.nn.Module:
    """nanoGPT's model, or ours from the library's builder (the one ``structlearn train`` uses)."""
    from structlearn.train.components import build_model
    from structlearn.train.config import TrainConfig

    torch.manual_seed(0)
    if kind == "nanogpt":
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its parameter count
            cfg = nano.GPTConfig(
                block_size=c["block_size"],
                vocab_size=65,
                n_layer=c["n_layer"],
                n_head=c["n_head"],
                n_embd=c["n_embd"],
                dropout=0.0,
                bias=False,
            )
            return nano.GPT(cfg).to(device)
    cfg = TrainConfig(
        task="lm",
        block_size=c["block_size"],
        n_layer=c["n_layer"],
        n_head=c["n_head"],
        n_embd=c["n_embd"],
        norm=kind,
        norm_type="layer",
        dropout=0.0,
        out_dir=None,
    )
    return build_model(cfg, {"vocab_size": 65}).to(device)


def part_throughput(args: argparse.Namespace) -> Path | None:
    nano = load_nanogpt(args.nanogpt_dir)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads or (os.cpu_count() or 1))
    kinds = ["preln", "dnt"] + (["nanogpt"] if nano is not None else [])
    if nano is None:
        log(f"nanoGPT's model.py not found in {args.nanogpt_dir!r}: comparing preln and dnt only")
    configs = ["cpu-config"] + (["gpu-config"] if device.type == "cuda" else [])
    dtypes = ["fp32", "bf16"]
    rows, data = [], {}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for cname in configs:
        c = THROUGHPUT_CONFIGS[cname]
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 65, (c["batch"], c["block_size"] + 1), generator=g).to(device)
        xb, yb = x[:, :-1].contiguous(), x[:, 1:].contiguous()
        tokens = c["batch"] * c["block_size"]
        for dt in dtypes:
            models = {k: _build(k, c, nano, device) for k in kinds}
            opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4, foreach=True) for k, m in models.items()}
            if args.tp_compile:  # every model compiled the same way; the warm-up below compiles
                models = {k: torch.compile(m) for k, m in models.items()}

            def step(k: str, m: Any = models, o: Any = opts, bf16: bool = dt == "bf16") -> None:
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                    _, loss = m[k](xb, yb)  # noqa: B023 - xb, yb are fixed within this config
                loss.backward()
                o[k].step()
                o[k].zero_grad(set_to_none=True)

            for k in kinds:  # warm-up (allocator, kernels)
                for _ in range(3):
                    step(k)
            sync()
            tps: dict[str, list[float]] = {k: [] for k in kinds}
            for r in range(args.tp_rounds):
                order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]  # rotate who goes first
                for k in order:
                    sync()
                    t = time.perf_counter()
                    for _ in range(args.tp_steps):
                        step(k)
                    sync()
                    tps[k].append(tokens * args.tp_steps / (time.perf_counter() - t))
            med = {k: statistics.median(v) for k, v in tps.items()}
            entry = {"tokens_per_s": med, "rounds": tps}
            for k in ("preln", "dnt"):
                ratio = med[k] / med["nanogpt"] if "nanogpt" in med else math.nan
                entry[f"{k}_over_nanogpt"] = ratio
                rows.append(
                    [
                        cname,
                        dt,
                        k,
                        f"{med[k]:,.0f}",
                        f"{med['nanogpt']:,.0f}" if "nanogpt" in med else "–",
                        f"{ratio:.3f}" if math.isfinite(ratio) else "–",
                    ]
                )
            data[f"{cname}/{dt}"] = entry
            log(f"{cname} {dt}: " + ", ".join(f"{k} {v:,.0f} tok/s" for k, v in med.items()))
            del models, opts
    lines = [
        f"Training-step throughput (forward + backward + AdamW foreach step), {args.tp_rounds} interleaved "
        f"rounds of {args.tp_steps} steps, median tokens/s; our GPT with LayerNorm (bias-free) against "
        f"nanoGPT's `model.py` ({args.nanogpt_dir}) at the same vocab (65), width, depth, context and batch, "
        f"dropout 0, {'every model under torch.compile (default mode)' if args.tp_compile else 'eager'}. "
        "Goal (issue 12): ≥ 1.0 for preln and ≥ 0.97 for dnt, fp32 and bf16.",
        "",
        markdown_table(["config", "dtype", "ours", "ours tokens/s", "nanoGPT tokens/s", "ratio"], rows),
    ]
    if nano is None:
        lines += ["", "nanoGPT's model.py was not available: ratios not measured."]
    name = (
        "throughput"
        + ("_compiled" if args.tp_compile else "")
        + ("" if args.device == "cpu" else f"_{args.device}")
    )
    return write_report(Path(args.out), name, "Throughput against nanoGPT (issue 12)", "\n".join(lines), data)


# ----------------------------------------------------------------------------------------- gpu config
def part_gpu_config(args: argparse.Namespace) -> Path:
    preset = "nanogpt-shakespeare-char"
    arms = [("preln", "adamw", 1e-3), ("dnt", "sgdw", args.sgdw_lr)]
    specs = []
    for n, o, lr in arms:
        s = _spec(args, "gpu-config", preset, n, o, lr, 0)
        s["eval_batch_size"] = 64
        specs.append(s)
    t0 = time.perf_counter()
    recs = run_many(args, specs)
    rows = []
    for r in recs:
        rows.append(
            [
                f"{r['norm']}+{r['optimizer']}",
                _fmt_lr(r["lr"]),
                r.get("status"),
                f"{_val(r):.4f}" if math.isfinite(_val(r)) else "–",
                f"{r['tokens_per_s']:,.0f}" if r.get("tokens_per_s") else "–",
                f"{r.get('optimizer_state_bytes', 0) / 2**20:.1f}",
                f"{r['wall_s']:.0f}",
            ]
        )
    lines = [
        f"nanoGPT's GPU shakespeare-char config (6L × 6H × 384, context 256, batch 64, dropout 0.2, "
        f"warmup {warmup_for(args.iters)}, cosine to 10 %) for {args.iters} iterations, seed 0, "
        f"{args.dtype}, device {args.device}; val loss over the whole val split. nanoGPT's published figure: "
        f"{NANOGPT_GPU_VAL} at 5,000 iterations.",
        "",
        markdown_table(
            ["arm", "LR", "status", "val loss", "tokens/s", "optimizer state MiB", "wall s"], rows
        ),
    ]
    data = {"iters": args.iters, "runs": recs, "wall_s": time.perf_counter() - t0}
    name = "gpu_config" + ("" if args.device == "cpu" else f"_{args.device}")
    return write_report(
        Path(args.out), name, "GPU config: preln+AdamW vs dnt+SGDW (issue 12)", "\n".join(lines), data
    )


# ------------------------------------------------------------------------------------------ wd sweep
def _grid_best_adamw(args: argparse.Namespace) -> tuple[str, float, list[float]] | None:
    """The best AdamW cell of the grid cache at this dtype/iters (mean over ≥ 3 seeds), if any: from this
    device's grid when there is one, else from another device's (named in the label)."""
    runs = Path(args.out) / "runs"
    folders = [runs / f"grid_{args.device}_{args.dtype}_it{args.iters}"]
    folders += sorted(f for f in runs.glob(f"grid_*_{args.dtype}_it{args.iters}") if f != folders[0])
    folder = next((f for f in folders if any(f.glob("*_adamw_*.json"))), folders[0])
    by: dict[tuple[str, float], list[float]] = {}
    for r in RunCache(folder).records("*_adamw_*"):
        if math.isfinite(_val(r)):
            by.setdefault((r["norm"], r["lr"]), []).append(_val(r))
    full = {k: v for k, v in by.items() if len(v) >= 3}
    if not full:
        return None
    (norm, lr), vals = min(full.items(), key=lambda kv: float(np.mean(kv[1])))
    return f"{norm}+adamw lr {_fmt_lr(lr)} ({folder.name})", float(np.mean(vals)), vals


def part_wd_sweep(args: argparse.Namespace) -> Path:
    """SGDW weight decay × LR (× momentum × gradient clip) at nanoGPT's CPU setting (spec dnt.md §7.1: the
    effective LR of a weight that feeds a norm is ≈ η/‖W‖², so decay and LR must be swept together; clipping
    is itself a heavy-tail remedy). Stage 1 seed 0 over the grid; stage 2 the other seeds at each norm's
    best configuration. ``--sweep-optimizer adamw`` sweeps AdamW the same way, its momentum being β₁."""
    from structlearn.train.config import preset_config

    preset = "nanogpt-shakespeare-char-cpu"
    opt = args.sweep_optimizer
    mu0 = _preset_momentum(opt)  # the preset's momentum and clip are kept out of the cache names
    clip0 = preset_config(preset, optimizer=opt).grad_clip or 0.0
    t0 = time.perf_counter()
    Conf = tuple[float, float, float, float]  # (LR, wd, momentum, clip; 0 = none)

    def spec(norm: str, c: Conf, seed: int) -> dict[str, Any]:
        lr, wd, mu, clip = c
        sp = {**_spec(args, "wd-sweep", preset, norm, opt, lr, seed), "weight_decay": float(wd)}
        sp |= {"momentum": float(mu)} if mu != mu0 else {}
        return sp | ({"grad_clip": float(clip)} if clip != clip0 else {})

    def conf_of(r: dict[str, Any]) -> Conf:  # records cached before momentum/clip were swept lack them
        return r["lr"], r["weight_decay"], r.get("momentum", mu0), r.get("grad_clip", clip0)

    confs = [
        (lr, wd, mu, clip)
        for lr in args.sweep_lrs
        for wd in args.sweep_wds
        for mu in args.sweep_momenta
        for clip in args.sweep_clips
    ]
    recs = run_many(args, [spec(n, c, 0) for n in args.norms for c in confs])
    by = {(r["norm"], *conf_of(r)): r for r in recs}
    best = {n: min(confs, key=lambda c, n=n: _val(by.get((n, *c)))) for n in args.norms}
    seed_recs = run_many(args, [spec(n, best[n], s) for n in args.norms for s in args.seeds])
    extra = len(args.sweep_momenta) > 1 or len(args.sweep_clips) > 1  # rows (LR, μ, clip), not LR alone
    label, mom = ("AdamW", "β₁") if opt == "adamw" else ("SGDW", "momentum")

    def clip_str(c: float) -> str:
        return f"{c:g}" if c else "none"

    lines = [
        f"Tiny Shakespeare, preset `{preset}` at {args.iters} iterations (warmup {warmup_for(args.iters)}), "
        f"device {args.device}, {args.dtype}; {label} (preset {mom} {mu0:g}, gradient clip {clip_str(clip0)} "
        "unless a column says otherwise), decoupled decay on ≥ 2-D matrices only; whole-split val loss. "
        f"Stage 1: seed 0 over the grid; stage 2: seeds {', '.join(map(str, args.seeds))} at each norm's "
        "best configuration.",
        "",
    ]
    for n in args.norms:
        rows = []
        for lr in args.sweep_lrs:
            for mu in args.sweep_momenta:
                for clip in args.sweep_clips:
                    cells = []
                    for wd in args.sweep_wds:
                        v = _val(by.get((n, lr, wd, mu, clip)))
                        cells.append(f"{v:.4f}" if math.isfinite(v) else "–")
                    rows.append([_fmt_lr(lr), *([f"{mu:g}", clip_str(clip)] if extra else []), *cells])
        head = ["LR", mom, "clip"] if extra else ["LR \\ wd"]
        lines += [
            f"## {n}+{opt} — stage 1 (seed 0), val loss; rows {f'LR, {mom}, clip' if extra else 'LR'}, "
            "columns weight decay",
            "",
            markdown_table([*head, *[f"wd {wd:g}" if extra else f"{wd:g}" for wd in args.sweep_wds]], rows),
            "",
        ]
    rows, summary = [], {}
    ref = _grid_best_adamw(args)
    for n in args.norms:
        vals = [_val(r) for r in seed_recs if r["norm"] == n and math.isfinite(_val(r))]
        summary[n] = vals
        gap = f"{np.mean(vals) - ref[1]:+.4f}" if ref and vals else "–"
        lr, wd, mu, clip = best[n]
        row = [f"{n}+{opt}", _fmt_lr(lr), f"{wd:g}", f"{mu:g}", clip_str(clip)]
        rows.append([*row, mean_std(vals, ".4f"), len(vals), gap])
    lines += [
        "## Stage 2 — seeds at the best configuration",
        "",
        markdown_table(
            ["cell", "LR", "wd", mom, "clip", "val loss mean ± std", "seeds", "− best AdamW"], rows
        ),
        "",
        (
            f"Best AdamW cell of the grid cache (same dtype and iterations): {ref[0]}, {np.mean(ref[2]):.4f} "
            f"over {len(ref[2])} seeds. Goal (issue 12): dnt+SGDW within {GOAL_SGDW_GAP} nats."
            if ref
            else "No AdamW grid cells with 3 seeds in this cache at the same device/dtype/iterations."
        ),
    ]
    data = {"stage1": recs, "stage2": seed_recs, "best": best, "adamw_ref": ref}
    data["wall_s"] = time.perf_counter() - t0
    # A momentum/clip sweep gets its own report, so the decay sweep's stays readable beside it.
    default = "adamw_sweep" if opt == "adamw" else ("sgdw_sweep" if extra else "wd_sweep")
    name = (args.sweep_report or default) + ("" if args.device == "cpu" else f"_{args.device}")
    title = f"{label} weight decay × LR" + (f" × {mom} × clip" if extra else "") + " (issue 12)"
    return write_report(Path(args.out), name, title, "\n".join(lines), data)


# --------------------------------------------------------------------------------------------- budget
# Fixed cells of the budget part, (norm, optimizer, LR, weight decay or None = WEIGHT_DECAY's, momentum or
# None = the preset's, Nesterov): each cell's 2,000-iteration optimum (the grid's LRs; dnt+SGDW's wd from the
# wd sweep; dnt+sgdw-mu0.7 and dnt+adamw-b0.7 from the momentum sweeps, sgdw_momentum.md and adamw_sweep.md;
# dnt+sgdw-nesterov's LR bracketed 0.03 / 0.1 / 0.3 on seed 0, stop 25), not re-tuned for longer runs. Named
# "norm+opt[-variant]"; every "+adamw" cell competes for the best AdamW cell.
BUDGET_CELLS: dict[str, tuple[str, str, float, float | None, float | None, bool]] = {
    "dnt+adamw": ("dnt", "adamw", 3e-3, None, None, False),
    "dnt+sgdw": ("dnt", "sgdw", 0.1, 1e-3, None, False),
    "preln+adamw": ("preln", "adamw", 3e-3, None, None, False),
    "dnt+muon": ("dnt", "muon", 1e-2, None, None, False),
    "preln+muon": ("preln", "muon", 1e-2, None, None, False),
    "preln+sgdw": ("preln", "sgdw", 0.3, None, None, False),  # the grid's optimum (wd 5e-3); no decay sweep
    "dnt+sgdw-mu0.7": ("dnt", "sgdw", 0.3, 1e-3, 0.7, False),
    "dnt+adamw-b0.7": ("dnt", "adamw", 3e-3, None, 0.7, False),  # β₁ 0.7 (adamw_sweep.md)
    "dnt+sgdw-nesterov": ("dnt", "sgdw", 0.1, 1e-3, None, True),  # μ 0.9, Nesterov
}


@functools.cache  # called per run record when the budget report matches records to cells
def _preset_momentum(opt: str) -> float:
    """The CPU preset's momentum of ``opt`` (AdamW: β₁), which runs cached before it was recorded used."""
    from structlearn.train.config import preset_config

    cfg = preset_config("nanogpt-shakespeare-char-cpu", optimizer=opt)
    return cfg.betas[0] if opt == "adamw" else cfg.momentum


def _cell_of(rec: dict[str, Any]) -> tuple[str, str, float, float, bool]:
    """(norm, optimizer, LR, momentum, Nesterov) of a run record, to match against :data:`BUDGET_CELLS`
    (records cached before momentum or Nesterov were recorded used the preset's and heavy-ball momentum)."""
    mu = rec.get("momentum", _preset_momentum(rec["optimizer"]))
    return rec["norm"], rec["optimizer"], rec["lr"], mu, bool(rec.get("nesterov", False))


def _cell_key(cell: str) -> tuple[str, str, float, float, bool]:
    norm, opt, lr, _, mu, nesterov = BUDGET_CELLS[cell]
    return norm, opt, lr, _preset_momentum(opt) if mu is None else mu, nesterov


def part_budget(args: argparse.Namespace) -> Path:
    """Do the cells' gaps change with the training budget? Every cell of ``--budget-cells`` at each of
    ``--budget-iters`` (the cosine schedule and warmup scale with the run), ``--seeds``, whole-split val:
    dnt+SGDW against the best AdamW cell, and DNT's effect on AdamW and on Muon, paired by seed."""
    preset = "nanogpt-shakespeare-char-cpu"
    t0 = time.perf_counter()
    cells = [c for c in BUDGET_CELLS if c in args.budget_cells]
    specs = []
    for iters in args.budget_iters:
        a = argparse.Namespace(**{**vars(args), "iters": iters})
        for c in cells:
            norm, opt, lr, wd, mu, nesterov = BUDGET_CELLS[c]
            for seed in args.seeds:
                sp = _spec(a, "budget", preset, norm, opt, lr, seed)
                sp |= {} if wd is None else {"weight_decay": wd}
                sp |= {} if mu is None else {"momentum": mu}
                specs.append(sp | ({"nesterov": True} if nesterov else {}))
    recs = run_many(args, specs)

    def paired(vals: dict[str, dict[int, float]], a: str, b: str) -> tuple[str, list[float]]:
        if a not in vals or b not in vals:
            return "–", []
        d = [vals[a][k] - vals[b][k] for k in sorted(set(vals[a]) & set(vals[b]))]
        sign = "+" if d and float(np.mean(d)) >= 0 else ""  # the sign on the mean only
        return (f"{sign}{mean_std(d, '.4f')} ({len(d)})" if d else "–"), d

    rows, gap_rows, data = [], [], {}
    for iters in args.budget_iters:
        at = [r for r in recs if r["iters"] == iters]
        runs = {c: [r for r in at if _cell_of(r) == _cell_key(c)] for c in cells}
        vals = {c: {r["seed"]: _val(r) for r in runs[c]} for c in cells}
        vals = {c: v for c, v in vals.items() if v}

        def mean_of(c: str, vals: dict[str, dict[int, float]] = vals) -> float:
            return float(np.mean(list(vals[c].values())))

        best = min((c for c in vals if "+adamw" in c), key=mean_of, default=None)
        best_any = min(vals, key=mean_of, default=None)
        row = [iters, f"{iters * 12 * 64 / 1_003_854:.1f}"]
        row += [mean_std(list(vals[c].values()), ".4f") if c in vals else "–" for c in cells]
        tps = {c: [r["tokens_per_s"] for r in runs[c] if r.get("tokens_per_s")] for c in cells}
        rows.append(row)
        g_best, d_best = paired(vals, "dnt+sgdw", best) if best else ("–", [])
        g_sgdw, _ = paired(vals, "dnt+sgdw", "dnt+adamw")
        g_adamw, d_adamw = paired(vals, "dnt+adamw", "preln+adamw")
        g_muon, d_muon = paired(vals, "dnt+muon", "preln+muon")
        g_sgd, d_sgd = paired(vals, "dnt+sgdw", "preln+sgdw")
        g_any, d_any = paired(vals, "dnt+sgdw", best_any) if best_any else ("–", [])
        named = [f"{best or '–'}: {g_best}", f"{best_any or '–'}: {g_any}"]
        g_tuned, d_tuned = paired(vals, "dnt+sgdw-mu0.7", best) if best else ("–", [])
        g_nest, d_nest = paired(vals, "dnt+sgdw-nesterov", best) if best else ("–", [])
        gap_rows.append([iters, g_sgdw, *named, g_tuned, g_nest, g_adamw, g_muon, g_sgd])
        data[str(iters)] = {
            "vals": vals,
            "best_adamw": best,
            "sgdw_minus_best_adamw": d_best,
            "sgdw_mu0.7_minus_best_adamw": d_tuned,
            "sgdw_nesterov_minus_best_adamw": d_nest,
            "best_cell": best_any,
            "sgdw_minus_best_cell": d_any,
            "dnt_minus_preln_adamw": d_adamw,
            "dnt_minus_preln_muon": d_muon,
            "dnt_minus_preln_sgdw": d_sgd,
            "tokens_per_s": {c: float(np.median(v)) for c, v in tps.items() if v},
        }
    tp_rows = [
        [c]
        + [
            f"{data[str(i)]['tokens_per_s'][c]:,.0f}" if c in data[str(i)]["tokens_per_s"] else "–"
            for i in args.budget_iters
        ]
        for c in cells
    ]
    cell_desc = "; ".join(
        f"{c} lr {_fmt_lr(lr)}, wd {WEIGHT_DECAY[opt] if wd is None else wd:g}"
        + ("" if mu is None else f", {'β₁' if opt == 'adamw' else 'momentum'} {mu:g}")
        + (", Nesterov momentum" if nesterov else "")
        for c, (_, opt, lr, wd, mu, nesterov) in BUDGET_CELLS.items()
        if c in cells
    )
    lines = [
        f"Tiny Shakespeare, preset `{preset}` (4L × 4H × 128, context 64, batch 12), LayerNorm,"
        f" device {args.device}, {args.dtype}, seeds {', '.join(map(str, args.seeds))}; warmup 5 % of the run"
        " (≤ 100 steps), cosine to 10 % over the run; whole-split val loss at the end. Fixed cells, each at"
        " its 2,000-iteration optimum (grid LRs; dnt+SGDW's wd from the wd sweep, dnt+sgdw-mu0.7 from the"
        " momentum sweep, dnt+adamw-b0.7 from AdamW's β₁ sweep, dnt+sgdw-nesterov's LR bracketed 0.03 / 0.1 /"
        " 0.3 on seed 0; SGDW momentum 0.9 and AdamW β (0.9, 0.99)"
        " unless stated), not re-tuned:"
        f" {cell_desc}."
        " Muon's embeddings, gains and head use its AdamW part (lr 1e-3).",
        "",
        "### Val loss (mean ± std over seeds)",
        "",
        markdown_table(["iterations", "epochs", *cells], rows),
        "",
        f"### Differences, paired by seed (mean ± std (seeds)); goal (issue 12): dnt+SGDW within "
        f"{GOAL_SGDW_GAP} nats of the best AdamW cell",
        "",
        markdown_table(
            [
                "iterations",
                "dnt+SGDW − dnt+AdamW",
                "dnt+SGDW − best AdamW cell",
                "dnt+SGDW − best cell",
                "dnt+SGDW (μ 0.7, lr 0.3) − best AdamW cell",
                "dnt+SGDW (Nesterov) − best AdamW cell",
                "DNT on AdamW (dnt − preln)",
                "DNT on Muon (dnt − preln)",
                "DNT on SGDW (dnt − preln)",
            ],
            gap_rows,
        ),
        "",
        "### Tokens/s (median over seeds; runs shared two cores: compare within a column only)",
        "",
        markdown_table(["cell"] + [f"{i} it" for i in args.budget_iters], tp_rows),
    ]
    data["wall_s"] = time.perf_counter() - t0
    data["runs"] = recs
    name = "budget" + ("" if args.device == "cpu" else f"_{args.device}")
    return write_report(
        Path(args.out), name, "The cells along the training budget (issue 12)", "\n".join(lines), data
    )


# ------------------------------------------------------------------------------------- bound overhead
def part_bound_overhead(args: argparse.Namespace) -> Path:
    from structlearn.optim.factory import make_optimizer
    from structlearn.optim.param_groups import param_groups

    device = torch.device(args.device)
    torch.set_num_threads(args.threads or 1)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    c = THROUGHPUT_CONFIGS["cpu-config"]
    rows, data = [], {}
    # (batch, lr): from initialisation at lr 1e-3 the bound is active on most matrices (the worst case: the
    # certificate runs every squaring); at lr 1e-4, as late in a decayed run, it is inactive and the CPU
    # certificate stops early (bound_core.EARLY_STOP_DEVICES).
    for batch, lr in ((12, 1e-3), (64, 1e-3), (12, 1e-4)):
        arms: dict[str, Any] = {}
        for name, opt, kw in (
            ("adamw", "adamw", {}),
            ("adamw2", "adamw2", {"tau": 0.02}),
            ("adamw2 (power iteration only)", "adamw2", {"tau": 0.02, "certified": False}),
        ):
            m = _build("preln", c, None, device)  # seed 0, context 64, LayerNorm
            o = make_optimizer(opt, param_groups(m, 0.1), lr=lr, weight_decay=0.1, betas=(0.9, 0.99), **kw)
            arms[name] = (m, o)
        # Every arm sees the same batches in the same order: a pool of 64 fresh batches, cycled. (One batch
        # repeated would overfit it within tens of steps, and AdamW's steps on a memorised batch are not
        # those of a real run.) From initialisation at lr 1e-3; at lr 1e-4 after 60 warm-up steps, so that
        # AdamW's moments have settled as late in a run.
        pool = torch.randint(0, 65, (64, batch, 65), generator=torch.Generator().manual_seed(0)).to(device)
        taken = dict.fromkeys(arms, 0)

        def step(k: str, arms: dict[str, Any] = arms, pool: torch.Tensor = pool, taken: dict = taken) -> None:
            m, o = arms[k]
            x = pool[taken[k] % len(pool)]
            taken[k] += 1
            _, loss = m(x[:, :-1], x[:, 1:])
            loss.backward()
            o.step()
            o.zero_grad(set_to_none=True)

        for k in arms:
            for _ in range(3 if lr == 1e-3 else 60):
                step(k)
        times: dict[str, list[float]] = {k: [] for k in arms}
        # CPU time of this process as well: on a shared CPU, wall time also counts the slices other jobs
        # ran in, CPU time only this process's own work (still slowed by their cache and memory traffic).
        cpu_times: dict[str, list[float]] = {k: [] for k in arms}
        for _ in range(args.tp_rounds):
            for k in arms:
                sync()
                t, t_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.tp_steps):
                    step(k)
                sync()
                times[k].append((time.perf_counter() - t) / args.tp_steps)
                cpu_times[k].append((time.process_time() - t_cpu) / args.tp_steps)
        base = statistics.median(times["adamw"])
        cpu_base = statistics.median(cpu_times["adamw"])
        for k, v in times.items():
            med, cpu = statistics.median(v), statistics.median(cpu_times[k])
            o = arms[k][1]
            active = o.bound_stats().get("bound/active_rate") if hasattr(o, "bound_stats") else None
            row = [batch, f"{lr:g}", k, "–" if active is None else f"{active:.2f}", f"{med * 1e3:.2f}"]
            row.append(f"{med / base:.3f}")
            key = f"batch{batch}" + ("" if lr == 1e-3 else f"_lr{lr:g}") + f"/{k}"
            data[key] = {"step_s": med, "ratio": med / base, "active_rate": active}
            if device.type == "cpu":
                row += [f"{cpu * 1e3:.2f}", f"{cpu / cpu_base:.3f}"]
                data[key] |= {"cpu_step_s": cpu, "cpu_ratio": cpu / cpu_base}
            rows.append(row)
        log(f"batch {batch}, lr {lr:g}: " + ", ".join(f"{r[2]} {r[4]} ms ({r[5]})" for r in rows[-3:]))
    lines = [
        "Step time (forward + backward + optimizer), GPT 4L × 4H × 128, context 64, preln, "
        f"device {args.device}, {torch.get_num_threads()} thread(s), {args.tp_rounds} interleaved rounds of "
        f"{args.tp_steps} steps (median; on the CPU also the process's CPU time, robust to other jobs' "
        "time slices). "
        "AdamW² = AdamW + the certified spectral bound (τ 0.02, 2 power iterations, up to 4 Gram squarings; "
        "on the CPU a matrix with ‖D‖_F ≤ τ·σ̂₁(W) skips the Gram product and the others stop squaring "
        "once their step is decided); 'power iteration only' = the previous estimate-only rule. 'active' = "
        "share of (matrix, step) pairs where the bound shrank the step: from initialisation at lr 1e-3 it is "
        "active (the worst case); at lr 1e-4, timed after 60 warm-up steps as late in a decayed run, it is "
        "not. Every arm cycles through the same 64 random batches. Goal: overhead ≤ 10 % of a step.",
        "",
        markdown_table(
            ["batch", "lr", "optimizer", "active", "ms / step", "ratio to AdamW"]
            + (["CPU ms / step", "CPU-time ratio"] if device.type == "cpu" else []),
            rows,
        ),
    ]
    name = "bound_overhead" + ("" if args.device == "cpu" else f"_{args.device}")
    return write_report(Path(args.out), name, "Spectral bound overhead (issue 12)", "\n".join(lines), data)


# ------------------------------------------------------------------------------------------- lr-scales
# (norm, optimizer, LR, weight decay, momentum / β₁, Nesterov) of the two cells compared: the best AdamW cell
# of the budget part (dnt+adamw-b0.7) and dnt+SGDW with Nesterov momentum (stop 25), both at their optima.
LR_SCALE_CELLS: dict[str, tuple[str, str, float, float, float, bool]] = {
    "dnt+sgdw-nesterov": ("dnt", "sgdw", 0.1, 1e-3, 0.9, True),
    "dnt+adamw-b0.7": ("dnt", "adamw", 3e-3, 0.1, 0.7, False),
}


def part_lr_scales(args: argparse.Namespace) -> Path:
    """Per-group learning rates (issue 12, stop 30): the embedding tables (the tied LM head) and the norm
    gains at multiples of the LR (``TrainConfig.embedding_lr_scale`` / ``gain_lr_scale``), for dnt+SGDW
    and for the best AdamW cell alike. Stage 1: seed 0 over ``--scale-grid`` (embedding, gain) pairs;
    stage 2: ``--seeds`` at each cell's best pair and at (1, 1), paired by seed."""
    preset = "nanogpt-shakespeare-char-cpu"
    t0 = time.perf_counter()
    pairs = [tuple(map(float, p.split(","))) for p in args.scale_grid]
    if (1.0, 1.0) not in pairs:
        pairs.insert(0, (1.0, 1.0))

    def spec(cell: str, pair: tuple[float, float], seed: int) -> dict[str, Any]:
        norm, opt, lr, wd, mu, nesterov = LR_SCALE_CELLS[cell]
        sp = {**_spec(args, "lr-scales", preset, norm, opt, lr, seed), "weight_decay": wd, "momentum": mu}
        sp |= {"nesterov": True} if nesterov else {}
        return sp if pair == (1.0, 1.0) else sp | {"embedding_lr_scale": pair[0], "gain_lr_scale": pair[1]}

    def key(r: dict[str, Any]) -> tuple[str, tuple[float, float]]:
        cell = next(c for c, v in LR_SCALE_CELLS.items() if (v[1], v[2]) == (r["optimizer"], r["lr"]))
        return cell, (r.get("embedding_lr_scale", 1.0), r.get("gain_lr_scale", 1.0))

    stage1 = run_many(args, [spec(c, p, 0) for c in LR_SCALE_CELLS for p in pairs])
    by = {key(r): _val(r) for r in stage1}
    best = {c: min(pairs, key=lambda p, c=c: by.get((c, p), math.inf)) for c in LR_SCALE_CELLS}
    todo = [spec(c, p, s) for c in LR_SCALE_CELLS for p in {best[c], (1.0, 1.0)} for s in args.seeds]
    stage2 = run_many(args, todo)
    vals: dict[tuple[str, tuple[float, float]], dict[int, float]] = {}
    for r in stage2:
        vals.setdefault(key(r), {})[r["seed"]] = _val(r)

    def fmt(p: tuple[float, float]) -> str:
        return f"emb ×{p[0]:g}, gains ×{p[1]:g}"

    rows1 = [[fmt(p), *[f"{by.get((c, p), math.inf):.4f}" for c in LR_SCALE_CELLS]] for p in pairs]
    rows2, data2 = [], {}
    for c in LR_SCALE_CELLS:
        for p in dict.fromkeys([(1.0, 1.0), best[c]]):
            v = vals.get((c, p), {})
            rows2.append([c, fmt(p), mean_std(list(v.values()), ".4f"), len(v)])
            data2[f"{c} {fmt(p)}"] = v
    sg, ad = (vals.get((c, best[c]), {}) for c in LR_SCALE_CELLS)
    sg1, ad1 = (vals.get((c, (1.0, 1.0)), {}) for c in LR_SCALE_CELLS)

    def paired(a: dict[int, float], b: dict[int, float]) -> tuple[str, list[float]]:
        d = [a[k] - b[k] for k in sorted(set(a) & set(b))]
        sign = "+" if d and float(np.mean(d)) >= 0 else ""  # the sign on the mean only, as in budget
        return (f"{sign}{mean_std(d, '.4f')} ({len(d)})" if d else "–"), d

    gaps = {
        "dnt+SGDW (scaled) − dnt+AdamW (scaled)": paired(sg, ad),
        "dnt+SGDW (scaled) − dnt+AdamW (unscaled)": paired(sg, ad1),
        "dnt+SGDW (unscaled) − dnt+AdamW (unscaled)": paired(sg1, ad1),
        "dnt+SGDW: scaled − unscaled": paired(sg, sg1),
        "dnt+AdamW: scaled − unscaled": paired(ad, ad1),
    }
    cells_desc = "; ".join(
        f"{c}: lr {_fmt_lr(lr)}, wd {wd:g}, {'β₁' if opt == 'adamw' else 'momentum'} {mu:g}"
        + (", Nesterov" if nest else "")
        for c, (_, opt, lr, wd, mu, nest) in LR_SCALE_CELLS.items()
    )
    lines = [
        f"Tiny Shakespeare, preset `{preset}` (4L × 4H × 128, context 64, batch 12) at {args.iters}"
        f" iterations, device {args.device}, {args.dtype}; warmup {warmup_for(args.iters)}, cosine to 10 %;"
        f" whole-split val loss. Cells: {cells_desc}. The embedding tables (token table = tied LM head,"
        " position table) and the undecayed non-embedding parameters (norm gains) get lr × the stated factors"
        " (`--embedding-lr-scale`, `--gain-lr-scale`). Stage 1: seed 0 over the pairs; stage 2: seeds"
        f" {', '.join(map(str, args.seeds))} at each cell's best pair and at (1, 1).",
        "",
        "## Stage 1 (seed 0), val loss",
        "",
        markdown_table(["scales", *LR_SCALE_CELLS], rows1),
        "",
        "## Stage 2, val loss (mean ± std over seeds)",
        "",
        markdown_table(["cell", "scales", "val loss", "seeds"], rows2),
        "",
        f"## Differences paired by seed (goal, issue 12: dnt+SGDW within {GOAL_SGDW_GAP} nats of the best"
        " AdamW cell)",
        "",
        markdown_table(["difference", "mean ± std (seeds)"], [[k, v[0]] for k, v in gaps.items()]),
    ]
    data = {
        "stage1": stage1,
        "stage2": stage2,
        "best": {c: list(p) for c, p in best.items()},
        "stage2_vals": data2,
        "gaps": {k: v[1] for k, v in gaps.items()},
        "wall_s": time.perf_counter() - t0,
    }
    name = "lr_scales" + ("" if args.device == "cpu" else f"_{args.device}")
    return write_report(
        Path(args.out), name, "Per-group learning rates for SGDW and AdamW (issue 12)", "\n".join(lines), data
    )


# ----------------------------------------------------------------------------------------------- main
PARTS = {
    "grid": part_grid,
    "throughput": part_throughput,
    "gpu-config": part_gpu_config,
    "bound-overhead": part_bound_overhead,
    "wd-sweep": part_wd_sweep,
    "budget": part_budget,
    "lr-scales": part_lr_scales,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--part", nargs="+", default=["grid"], choices=list(PARTS))
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--workers", type=int, default=1, help="parallel training processes")
    p.add_argument("--threads", type=int, default=0, help="torch threads per process (0 = cores / workers)")
    p.add_argument("--iters", type=int, default=None, help="iterations (grid 2000, gpu-config 5000)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--norms", nargs="+", default=list(NORMS), choices=list(NORMS))
    p.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    p.add_argument("--widen", type=int, default=1, help="extra LR rungs per edge when the best is at one")
    p.add_argument("--sgdw-lr", type=float, default=0.3, help="gpu-config: dnt+SGDW learning rate")
    p.add_argument("--sweep-lrs", type=float, nargs="+", default=[0.1, 0.3], help="wd-sweep: SGDW LRs")
    p.add_argument(
        "--sweep-wds", type=float, nargs="+", default=[0.0, 5e-4, 2e-3, 5e-3, 2e-2], help="wd-sweep: decays"
    )
    p.add_argument(
        "--sweep-optimizer",
        choices=("sgdw", "adamw"),
        default="sgdw",
        help="wd-sweep: the optimizer swept (AdamW: the momentum axis is β₁)",
    )
    p.add_argument(
        "--sweep-momenta", type=float, nargs="+", default=[0.9], help="wd-sweep: SGDW momenta (AdamW: β₁)"
    )
    p.add_argument(
        "--sweep-clips",
        type=float,
        nargs="+",
        default=[1.0],
        help="wd-sweep: gradient-norm clips (0 = none; the preset clips at 1.0)",
    )
    p.add_argument(
        "--sweep-report",
        default=None,
        help="wd-sweep: report file name without extension (default wd_sweep, or sgdw_sweep when momentum "
        "or clip is swept)",
    )
    p.add_argument(
        "--budget-iters", type=int, nargs="+", default=[2000, 6000], help="budget: iterations per run"
    )
    p.add_argument(
        "--budget-cells",
        nargs="+",
        default=list(BUDGET_CELLS),
        choices=list(BUDGET_CELLS),
        help="budget: which cells (norm+optimizer at their 2,000-iteration LR) to run",
    )
    p.add_argument(
        "--scale-grid",
        nargs="+",
        default=["0.3,1", "1,10", "0.3,10", "0.3,30"],
        metavar="EMB,GAIN",
        help="lr-scales: (embedding, gain) LR multiples tried on seed 0, besides (1, 1)",
    )
    p.add_argument("--nanogpt-dir", default=None, help="folder with nanoGPT's model.py (throughput part)")
    p.add_argument("--tp-rounds", type=int, default=5)
    p.add_argument("--tp-steps", type=int, default=10)
    p.add_argument(
        "--tp-compile",
        action="store_true",
        help="throughput: compile every model (ours and nanoGPT's) with torch.compile before timing",
    )
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--report-only", action="store_true", help="report from the run cache, train nothing")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 20 iterations (gpu-config 2), 2 short timing rounds"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available")
    if args.workers < 1:
        p.error("--workers must be >= 1")
    if min(args.budget_iters) < 2:
        p.error("--budget-iters must be >= 2")
    if not all(math.isfinite(v) and v > 0 for v in args.sweep_lrs):
        p.error("--sweep-lrs must be finite and > 0")
    if not all(math.isfinite(v) and v >= 0 for v in args.sweep_wds + args.sweep_clips):
        p.error("--sweep-wds and --sweep-clips must be finite and >= 0")
    if not all(0 <= v < 1 for v in args.sweep_momenta):
        p.error("--sweep-momenta must be in [0, 1)")
    if args.sweep_report is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.sweep_report):
        p.error("--sweep-report must be a plain file name (letters, digits, '_', '-', '.')")
    info = machine_info()
    log(f"bench_lm: parts {args.part}, device {args.device}, {args.dtype}, commit {info['commit']}")
    for part in args.part:
        a = argparse.Namespace(**vars(args))
        if a.iters is None:
            a.iters = (
                (2 if part == "gpu-config" else 20) if a.quick else (5000 if part == "gpu-config" else 2000)
            )
        if a.quick:
            a.tp_rounds, a.tp_steps, a.budget_iters = 2, 3, [20, 40]
            if a.out == str(RESULTS):
                a.out = str(RESULTS / "quick")  # never mixed with the real results
        path = PARTS[part](a)
        if path is not None:
            log(f"{part}: report {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
