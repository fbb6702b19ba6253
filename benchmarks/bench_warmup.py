"""Crash reproduction for warmup-free training (arXiv 2505.21910; spec warmup_free.md §4).

On the char-level GPT and the Fashion-MNIST ViT of the DNT issue:
1. LR ladder for preln + AdamW without warmup (no gradient clipping, wd 0.1, β = (0.9, 0.95), cosine
   to 10 %, fp32) until it crashes in ≥ 2 of 3 seeds; the lowest such LR is LR_crash. Seeds of a
   ladder LR run in order and stop once the verdict is settled (two agreeing seeds).
2. At LR_crash and 2·LR_crash, ≥ 3 seeds per arm: B0 preln+AdamW with linear warmup (10 % of steps);
   B1 preln+AdamW, no warmup; B2 preln+AdamW², no warmup, τ swept (best τ only at 2·LR_crash);
   B3 dnt+AdamW, no warmup (LR_crash only); B4 dnt+SGDW and B5 dnt+SGDW², no warmup, same LR.
   Logged: loss every step, attention entropy / erank, SEC of W_qᵀW_k, σ₁ of the matrices on a fixed
   probe batch, the bound's α_t/α_sched; the exact realised σ₁(ΔW)/σ₁(W) of AdamW² steps.
3. Overhead of the bound: optimizer step and full training step with and without the wrapper,
   interleaved in the same process at the benchmark size.

Crash (spec §4.1): a non-finite loss; or the 10-step mean loss above the initial loss after step 50;
or a jump of > 1 nat over the running minimum of the 10-step mean that does not come back under that
threshold within 200 steps (or before the run ends).

Every run trains through the library's engine (``structlearn.train.Trainer``: the benchmark's data
behind ``train.task_api.Task``, its measurements in a hook) and is cached as JSON under ``<out>/runs``
(``structlearn.utils.harness.RunCache``, resumable); ``--quick`` runs a tiny version.
Results: ``benchmarks/results/warmup/bench_warmup.{md,json}`` and PNG plots.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from structlearn.diagnostics.stability import stability_metrics, warmup_curve
from structlearn.optim.spectral_bound import SpectralBound, matrix_shape
from structlearn.train import components
from structlearn.train.config import TrainConfig
from structlearn.train.engine import Trainer
from structlearn.utils.harness import RunCache, make_log, markdown_table, mean_std, parse_seeds, write_report
from structlearn.utils.plotting import save_figure, subplots
from structlearn.utils.seed import seed_everything

ROOT = Path(__file__).resolve().parent
LADDER = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0]
TAUS = [0.005, 0.01, 0.02, 0.05]
B5_TAU = 0.02  # SGDW² uses the library default τ (no separate sweep: budget)
SUMMARY_KEYS = (
    "attn/entropy_min",
    "attn/entropy_mean",
    "attn/erank_at_min_entropy",
    "attn/erank_min",
    "qk/sigma1_max",
    "qk/sec1_max",
    "qk/sec3_max",
    "qk/erank_min",
    "sigma1_max",
)


@dataclass(frozen=True)
class Setup:
    """Model/data size of one benchmark (fixed across arms)."""

    kind: str  # gpt | vit
    steps: int
    batch_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    max_bytes: int = 2_000_000
    train_subset: int = 10_000
    test_subset: int = 2_000
    eval_batches: int = 20
    diag_every: int = 20
    bound_every: int = 5
    warmup_frac: float = 0.1


@dataclass(frozen=True)
class Arm:
    name: str
    norm: str
    optimizer: str
    warmup: bool
    tau: float | None = None
    bound: str = "matrices"  # SpectralBound ``params``: "matrices" (library default) or "all"

    @property
    def label(self) -> str:
        tau = f" τ={self.tau:g}" if self.tau is not None else ""
        bound = f"[{self.bound}]" if self.bound != "matrices" else ""
        return f"{self.name} {self.norm}+{self.optimizer}{bound}{tau}" + (" +warmup" if self.warmup else "")


B1 = Arm("B1", "preln", "adamw", False)


def comparison_arms(taus: list[float], taus_all: list[float], with_b3: bool) -> list[Arm]:
    """B0–B5 of spec §4.2; B2a/B5a bound every parameter (vectors too), added after the first ViT run
    showed B2 stalling because the unbounded biases take full high-LR Adam steps."""
    arms = [Arm("B0", "preln", "adamw", True), B1]
    arms += [Arm("B2", "preln", "adamw2", False, t) for t in taus]
    arms += [Arm("B2a", "preln", "adamw2", False, t, "all") for t in taus_all]
    if with_b3:
        arms.append(Arm("B3", "dnt", "adamw", False))
    arms += [Arm("B4", "dnt", "sgdw", False), Arm("B5", "dnt", "sgdw2", False, B5_TAU)]
    arms.append(Arm("B5a", "dnt", "sgdw2", False, B5_TAU, "all"))
    return arms


# ----------------------------------------------------------------------------------------------- data
class Data:
    """Fixed data per benchmark: train sampler, probe batch and evaluation batches."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        if setup.kind == "gpt":
            from structlearn.data.text import load_text, sample_batch

            self._sample = sample_batch
            self.text = load_text("stdlib", "char", max_bytes=setup.max_bytes)
            self.vocab_size = self.text.vocab_size
            g = torch.Generator().manual_seed(1234)
            self.eval = [
                sample_batch(self.text.val, setup.block_size, setup.batch_size, g)
                for _ in range(setup.eval_batches)
            ]
            self.probe = self.eval[0][0][:8]
        else:
            from structlearn.data.images import load_image_dataset

            ds = load_image_dataset("fashion_mnist")
            rng = np.random.default_rng(1234)
            tr = rng.choice(len(ds.x_train), setup.train_subset, replace=False)
            te = rng.choice(len(ds.x_test), setup.test_subset, replace=False)
            self.x_train = torch.from_numpy(ds.x_train[tr]).float()
            self.y_train = torch.from_numpy(ds.y_train[tr]).long()
            self.x_test = torch.from_numpy(ds.x_test[te]).float()
            self.y_test = torch.from_numpy(ds.y_test[te]).long()
            self.n_classes = ds.n_classes
            self.probe = self.x_test[:32]

    def batches(self, seed: int):
        g = torch.Generator().manual_seed(10_000 + seed)
        s = self.setup
        if s.kind == "gpt":
            while True:
                yield self._sample(self.text.train, s.block_size, s.batch_size, g)
        else:
            n = len(self.x_train)
            while True:
                perm = torch.randperm(n, generator=g)
                for i in range(0, n - s.batch_size + 1, s.batch_size):
                    idx = perm[i : i + s.batch_size]
                    yield self.x_train[idx], self.y_train[idx]


def model_info(setup: Setup, data: Data) -> dict[str, Any]:
    """What the library's model builder needs beyond the config (as ``train.tasks`` reports it)."""
    if setup.kind == "gpt":
        return {"vocab_size": data.vocab_size}
    return {"image_size": (28, 28), "in_channels": 1, "n_classes": data.n_classes}


def train_config(setup: Setup, arm: Arm, lr: float, seed: int) -> TrainConfig:
    """The run as a ``TrainConfig`` (fp32, no clipping, cosine to 10 %, no checkpoints or files);
    the engine logs (and checks the loss for non-finite values) every ``diag_every`` steps."""
    adam = arm.optimizer.startswith("adamw")
    bound = {"tau": arm.tau, "power_iters": 2, "bound_params": arm.bound}
    data_fields: dict[str, Any] = (
        {"task": "lm", "corpus": "stdlib", "tokenizer": "char", "max_bytes": setup.max_bytes}
        if setup.kind == "gpt"
        else {"task": "image", "dataset": "fashion_mnist", "train_subset": setup.train_subset}
    )
    return TrainConfig(
        **data_fields,
        block_size=setup.block_size,
        n_layer=setup.n_layer,
        n_head=setup.n_head,
        n_embd=setup.n_embd,
        norm=arm.norm,
        optimizer=arm.optimizer,
        optimizer_kwargs=bound if arm.optimizer.endswith("2") else {},
        lr=lr,
        weight_decay=0.1 if adam else 5e-4,
        betas=(0.9, 0.95),
        momentum=0.9,
        warmup_steps=round(setup.warmup_frac * setup.steps) if arm.warmup else 0,
        min_lr_frac=0.1,
        steps=setup.steps,
        batch_size=setup.batch_size,
        grad_clip=None,
        eval_every=0,
        log_every=setup.diag_every,
        final_checkpoint=False,
        seed=seed,
        tune_malloc=False,
        progress=False,
        out_dir=None,
    )


def build_model(setup: Setup, data: Data, norm: str) -> nn.Module:
    """The library's builder (the one ``structlearn train`` uses) at this benchmark's size."""
    cfg = train_config(setup, Arm("-", norm, "adamw", False), 1e-3, 0)
    return components.build_model(cfg, model_info(setup, data))


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """``train.components.build_optimizer`` plus ``model=`` for a bounded optimizer (its
    ``bounded_names`` then name the model's parameters, which the exact-ratio check needs)."""
    extra = {"model": model} if cfg.optimizer.endswith("2") else {}
    return components.build_optimizer(cfg, model, **extra)


@torch.no_grad()
def evaluate(model: nn.Module, setup: Setup, data: Data) -> dict[str, float]:
    model.eval()
    try:
        if setup.kind == "gpt":
            losses = [float(model(x, y)[1]) for x, y in data.eval]
            return {"val_loss": float(np.mean(losses))}
        logits = torch.cat([model(data.x_test[i : i + 500])[0] for i in range(0, len(data.x_test), 500)])
        loss = float(nn.functional.cross_entropy(logits, data.y_test))
        acc = float((logits.argmax(1) == data.y_test).float().mean())
        return {"test_loss": loss, "test_acc": acc}
    finally:
        model.train()


# ------------------------------------------------------------------------------------------ crashes
def detect_crash(
    losses: list[float], window: int = 10, after: int = 50, jump: float = 1.0, recover: int = 200
) -> dict:
    """Spec §4.1 crash rule on per-step losses; returns {"crash": bool, "step": int|None, "reason": str}."""
    x = np.asarray(losses, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        return {"crash": True, "step": int(np.argmax(bad)), "reason": "non-finite loss"}
    if x.size == 0:
        return {"crash": False, "step": None, "reason": ""}
    sm = np.convolve(x, np.ones(window) / window, mode="valid")  # sm[i] = mean of x[i : i + window]
    steps = np.arange(sm.size) + window - 1
    above = np.nonzero((steps > after) & (sm > x[0]))[0]
    if above.size:
        return {
            "crash": True,
            "step": int(steps[above[0]]),
            "reason": "loss above the initial loss after step 50",
        }
    runmin = np.minimum.accumulate(sm)
    for i in range(1, sm.size):
        thr = runmin[i - 1] + jump
        if sm[i] > thr:
            later = sm[i + 1 : i + 1 + recover]
            if not (later <= thr).any():
                return {"crash": True, "step": int(steps[i]), "reason": "jump > 1 nat without recovery"}
    return {"crash": False, "step": None, "reason": ""}


# ------------------------------------------------------------------------------------------ one run
def _bounded(opt: Any, model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    names = set(getattr(opt, "bounded_names", []))
    return [(n, p) for n, p in model.named_parameters() if n in names]


def _exact_ratio(prev: list[torch.Tensor], params: list[torch.Tensor]) -> float:
    worst = 0.0
    for w0, p in zip(prev, params, strict=True):
        shape = matrix_shape(w0, strict=False)
        s_w = torch.linalg.matrix_norm(w0.reshape(shape), ord=2)
        if s_w > 0:
            s_d = torch.linalg.matrix_norm((w0 - p.detach()).reshape(shape), ord=2)
            worst = max(worst, float(s_d / s_w))
    return worst


class WarmupTask:
    """The benchmark's fixed data behind the engine's task interface (``train.task_api.Task``): its own
    batch stream (generator ``10_000 + seed``) and evaluation (GPT: mean loss over the fixed validation
    batches; ViT: test loss and accuracy), so every arm sees the same batches and the same test set."""

    def __init__(self, setup: Setup, data: Data, seed: int) -> None:
        self.setup, self.data = setup, data
        gpt = setup.kind == "gpt"
        self.unit = "tokens" if gpt else "images"
        self.metric = "val_loss" if gpt else "test_acc"
        self.items_per_step = setup.batch_size * (setup.block_size if gpt else 1)
        self.model_info = model_info(setup, data)
        self.fingerprint = {"benchmark": "bench_warmup", "kind": setup.kind}
        self.vocabulary = None
        self._batches = data.batches(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return next(self._batches)

    def probe_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.setup.kind == "gpt":
            return self.data.eval[0]
        return self.data.x_test[:32], self.data.y_test[:32]

    def evaluate(self, model: nn.Module, device: torch.device, autocast: Any) -> dict[str, float]:
        return evaluate(model, self.setup, self.data)

    def log_fields(self) -> dict[str, Any]:
        return {}

    def describe(self) -> str:
        return f"bench_warmup {self.setup.kind} data"

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise ValueError("bench_warmup runs are not resumed")


class RunProbe:
    """Engine hook logging what one run of the benchmark keeps: every step's loss; the stability
    diagnostics on the probe batch at step 0 and every ``diag_every`` steps while the loss stays finite;
    the bound's statistics every ``bound_every`` steps; every ``diag_every`` steps from step 0 the exact
    realised σ₁(ΔW)/σ₁(W_{t−1}) of the bounded matrices (SVD around the optimizer step)."""

    def __init__(self, setup: Setup, data: Data, arm: Arm) -> None:
        self.setup, self.data, self.arm = setup, data, arm
        self.losses = torch.full((setup.steps,), math.nan)
        self.records: list[dict[str, float]] = []
        self.bound: list[dict[str, float]] = []
        self.exact: list[float] = []
        self.stopped_at: int | None = None  # 0-based step at which a non-finite loss stopped the run
        self._prev: list[torch.Tensor] | None = None

    def on_start(self, trainer: Any) -> None:
        opt, model = trainer.optimizer, trainer.model
        self.is_bound = isinstance(opt, SpectralBound)
        self.bounded = _bounded(opt, model) if self.is_bound else []
        self.records.append({"step": 0.0, **_diag(model, self.data)})

    def after_backward(self, trainer: Any, step: int) -> None:
        if self.is_bound and (step - 1) % self.setup.diag_every == 0:
            self._prev = [p.detach().clone() for _, p in self.bounded]

    def after_step(self, trainer: Any, step: int) -> None:
        s = self.setup
        self.losses[step - 1] = trainer.last_loss
        if self._prev is not None:
            ratio = _exact_ratio(self._prev, [p for _, p in self.bounded])
            self.exact.append(ratio / float(self.arm.tau))
            self._prev = None
        if self.is_bound and step % s.bound_every == 0:
            self.bound.append({"step": float(step), **trainer.optimizer.bound_stats()})
        if step % s.diag_every == 0 or step == s.steps:
            # The engine stops at this (logging) step when a loss was non-finite: no diagnostics then.
            if not torch.isfinite(self.losses[:step]).all():
                self.stopped_at = step - 1
                return
            self.records.append({"step": float(step), **_diag(trainer.model, self.data)})


def run_one(setup: Setup, data: Data, arm: Arm, lr: float, seed: int) -> dict[str, Any]:
    """One run through the library's training engine (``structlearn.train.Trainer``)."""
    cfg = train_config(setup, arm, lr, seed)
    probe = RunProbe(setup, data, arm)
    parts = components.Components(
        task=lambda c, ctx: WarmupTask(setup, data, seed),
        optimizer=build_optimizer,
    )
    result = Trainer(cfg, hooks=[probe], components=parts).fit()
    crashed_at = probe.stopped_at
    last = result.history[-1] if result.history else {}
    out: dict[str, Any] = {
        "arm": asdict(arm),
        "label": arm.label,
        "lr": lr,
        "seed": seed,
        "warmup_steps": cfg.warmup_steps,
        "losses": [round(v, 5) for v in probe.losses.tolist()],
        "records": probe.records,
        "bound": probe.bound,
        "exact_ratio_over_tau": probe.exact,
        "wall_s": result.wall_s,
        "peak_mb": result.peak_mb,
        "stopped_at": crashed_at,
    }
    raw = [
        v if v is not None else math.nan
        for v in out["losses"][: (crashed_at + 1 if crashed_at is not None else None)]
    ]
    out["crash"] = detect_crash(raw)
    metrics = ("val_loss",) if setup.kind == "gpt" else ("test_loss", "test_acc")
    out["final"] = {k: last[k] for k in metrics if k in last} if crashed_at is None else {}
    finite_tail = [v for v in raw[-20:] if math.isfinite(v)]
    out["final_train_loss"] = float(np.mean(finite_tail)) if finite_tail and crashed_at is None else math.nan
    return out


def _diag(model: nn.Module, data: Data) -> dict[str, float]:
    d = stability_metrics(model, data.probe, per_head=False, sigma_of_weights=True)
    return {k: d[k] for k in SUMMARY_KEYS if k in d}


def cached_run(
    cache: RunCache, setup: Setup, data: Data, arm: Arm, lr: float, seed: int, log: Any
) -> dict[str, Any]:
    tau = f"_tau{arm.tau:g}" if arm.tau is not None else ""
    bound = f"_{arm.bound}" if arm.bound != "matrices" else ""
    key = f"{setup.kind}_{arm.name}_{arm.norm}_{arm.optimizer}{bound}{tau}_lr{lr:g}_s{seed}"
    t0 = time.time()
    res, ran = cache.run(
        key,
        lambda: {**run_one(setup, data, arm, lr, seed), "setup": asdict(setup)},
        valid=lambda r: r.get("setup") == asdict(setup),
    )
    if ran:
        fin = res["final"].get("val_loss", res["final"].get("test_acc", math.nan))
        log(
            f"{setup.kind} {arm.label} lr={lr:g} seed={seed}: crash={res['crash']['crash']} "
            f"final={fin:.4f} ({time.time() - t0:.0f}s)"
        )
    return res


# ------------------------------------------------------------------------------------------ overhead
def measure_overhead(setup: Setup, data: Data, reps: int, steps_per_rep: int) -> dict[str, Any]:
    """Full training step and optimizer step with and without the bound, interleaved, same process."""
    out: dict[str, Any] = {}
    for base, wrapped in (("adamw", "adamw2"), ("sgdw", "sgdw2")):
        times: dict[str, dict[str, list[float]]] = {}
        setups = {}
        for name in (base, wrapped):
            seed_everything(0)
            model = build_model(setup, data, "preln")
            arm = Arm("T", "preln", name, False, 0.02 if name.endswith("2") else None)
            setups[name] = (
                model,
                build_optimizer(train_config(setup, arm, 1e-3 if base == "adamw" else 0.1, 0), model),
                data.batches(0),
            )
            times[name] = {"step": [], "opt": []}
        for _ in range(reps):
            for name in (base, wrapped):
                model, opt, batches = setups[name]
                for _ in range(steps_per_rep):
                    x, y = next(batches)
                    t0 = time.perf_counter()
                    _, loss = model(x, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    t1 = time.perf_counter()
                    opt.step()
                    t2 = time.perf_counter()
                    times[name]["step"].append(t2 - t0)
                    times[name]["opt"].append(t2 - t1)
        med = {n: {k: float(np.median(v)) for k, v in d.items()} for n, d in times.items()}
        extra = med[wrapped]["opt"] - med[base]["opt"]
        out[base] = {
            "median_step_s": {n: med[n]["step"] for n in med},
            "median_opt_s": {n: med[n]["opt"] for n in med},
            "bound_s_per_step": extra,
            "bound_over_full_step": extra / med[base]["step"],
            "opt_ratio": med[wrapped]["opt"] / med[base]["opt"],
            "step_ratio": med[wrapped]["step"] / med[base]["step"],
            "samples": len(times[base]["step"]),
        }
    return out


# ------------------------------------------------------------------------------------------ summary
def summarise(runs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    metric = "val_loss" if kind == "gpt" else "test_acc"
    finals = [r["final"].get(metric, math.nan) for r in runs]
    recs = [r["records"] for r in runs]

    def over(key: str, fn: Any) -> list[float]:
        vals = []
        for rec in recs:
            xs = [x[key] for x in rec if key in x and x[key] is not None and math.isfinite(x[key])]
            vals.append(fn(xs) if xs else math.nan)
        return vals

    scale = []
    early = []
    for r in runs:
        s = [b["bound/scale_mean"] for b in r["bound"]]
        scale.append(float(np.mean(s)) if s else math.nan)
        cut = max(1, len(s) // 10)
        early.append(float(np.mean(s[:cut])) if s else math.nan)
    step0 = [r["exact_ratio_over_tau"][0] for r in runs if r["exact_ratio_over_tau"]]
    later = [x for r in runs for x in r["exact_ratio_over_tau"][1:]]
    peaks = []
    for r in runs:
        L = np.asarray(r["losses"], dtype=np.float64)
        sm = np.convolve(L, np.ones(10) / 10, mode="valid")
        peaks.append(float(np.nanmax(sm)) if np.isfinite(L).all() else math.inf)
    return {
        "n": len(runs),
        "crashes": sum(bool(r["crash"]["crash"]) for r in runs),
        "crash_steps": [r["crash"]["step"] for r in runs],
        "metric": metric,
        "final": finals,
        "final_train_loss": [r["final_train_loss"] for r in runs],
        "min_entropy": over("attn/entropy_min", min),
        "erank_at_min_entropy_last": [
            rec[-1].get("attn/erank_at_min_entropy", math.nan) if rec else math.nan for rec in recs
        ],
        "max_sec1": over("qk/sec1_max", max),
        "max_sec3": over("qk/sec3_max", max),
        "max_qk_sigma1": over("qk/sigma1_max", max),
        "scale_mean": scale,
        "scale_mean_first10pct": early,
        "exact_step0_max": max(step0) if step0 else math.nan,
        "exact_later_median": float(np.median(later)) if later else math.nan,
        "exact_later_max": max(later) if later else math.nan,
        "peak_loss": peaks,
        "initial_loss": [r["losses"][0] for r in runs],
        "wall_s": [r["wall_s"] for r in runs],
        "peak_mb": [r["peak_mb"] for r in runs],
    }


def _fmt(v: list[float], fmt: str = ".3f") -> str:
    return mean_std(v, fmt)


def comparison_table(summ: dict[str, dict[str, Any]], kind: str) -> str:
    metric = "val loss" if kind == "gpt" else "test acc"
    headers = [
        "arm",
        "crashes",
        f"final {metric}",
        "final train loss",
        "peak loss (10-step mean)",
        "min attn entropy",
        "max SEC top-1",
        "max SEC top-3",
        "max σ₁(W_qᵀW_k)",
        "mean α/α_sched",
        "s/run",
    ]
    rows = []
    for label, s in summ.items():
        rows.append(
            [
                label,
                f"{s['crashes']}/{s['n']}",
                _fmt(s["final"], ".4f"),
                _fmt(s["final_train_loss"]),
                _fmt(s["peak_loss"], ".3g"),
                _fmt(s["min_entropy"]),
                _fmt(s["max_sec1"]),
                _fmt(s["max_sec3"]),
                _fmt(s["max_qk_sigma1"], ".3g"),
                _fmt(s["scale_mean"], ".3g") if not all(math.isnan(x) for x in s["scale_mean"]) else "—",
                _fmt(s["wall_s"], ".0f"),
            ]
        )
    return markdown_table(headers, rows)


# ------------------------------------------------------------------------------------------ plots
def plot_losses(groups: dict[str, list[dict[str, Any]]], path: Path, title: str, ylim: float | None) -> None:
    fig, ax = subplots(1, 1, figsize=(8, 5))
    for label, runs in groups.items():
        for i, r in enumerate(runs):
            L = np.array(r["losses"], dtype=np.float64)
            sm = np.convolve(L, np.ones(10) / 10, mode="valid")
            line = ax.plot(np.arange(sm.size) + 9, sm, lw=0.9, alpha=0.8, label=label if i == 0 else None)
            color = line[0].get_color()
            if r["crash"]["crash"] and math.isfinite(r["crash"]["step"]):
                ax.axvline(r["crash"]["step"], color=color, ls=":", lw=0.6)
    finite = [
        v for runs in groups.values() for r in runs for v in r["losses"] if v is not None and math.isfinite(v)
    ]
    low = max(0.0, min(finite) - 0.2) if finite else 0.0
    ax.set_ylim(low, ylim if ylim else None)
    ax.set_xlabel("step")
    ax.set_ylabel("train loss (10-step mean)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_stability_arms(
    groups: dict[str, list[dict[str, Any]]], path: Path, title: str, warmup: int, steps: int
) -> None:
    fig, axes = subplots(2, 3, figsize=(16, 8))
    ax = axes.ravel()
    panels = [
        ("attn/entropy_min", "min attention entropy (nats)", False),
        ("attn/erank_at_min_entropy", "erank(A) of the min-entropy head", False),
        ("qk/sec1_max", "max SEC top-1 of W_qᵀW_k", False),
        ("qk/sigma1_max", "max σ₁(W_qᵀW_k)", True),
        ("sigma1_max", "max σ₁ over weight matrices", True),
    ]
    for label, runs in groups.items():
        color = None
        for i, r in enumerate(runs):
            for j, (key, _, _) in enumerate(panels):
                xs = [(x["step"], x[key]) for x in r["records"] if key in x]
                if not xs:
                    continue
                a = np.asarray(xs, dtype=np.float64)
                line = ax[j].plot(
                    a[:, 0], a[:, 1], lw=0.9, color=color, label=label if (i == 0 and j == 0) else None
                )
                color = line[0].get_color()
            b = [(x["step"], x["bound/scale_mean"]) for x in r["bound"]]
            if b:
                a = np.asarray(b, dtype=np.float64)
                ax[5].plot(a[:, 0], a[:, 1], lw=0.9, color=color, label=label if i == 0 else None)
    t = np.arange(steps)
    ax[5].plot(t, warmup_curve(t, warmup), "k--", lw=1.0, label=f"linear warmup ({warmup} steps)")
    ax[5].set_yscale("log")
    ax[5].set_title("α_t/α_sched (mean over matrices)")
    for j, (_, name, logy) in enumerate(panels):
        ax[j].set_title(name)
        if logy:
            ax[j].set_yscale("log")
    for a in ax:
        a.set_xlabel("step")
    ax[0].legend(fontsize=7)
    ax[5].legend(fontsize=7)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_ladder(ladder: dict[float, list[dict[str, Any]]], path: Path, kind: str) -> None:
    fig, ax = subplots(1, 1, figsize=(6, 4))
    for lr, runs in ladder.items():
        for r in runs:
            y = r["final_train_loss"]
            y = (
                y
                if math.isfinite(y)
                else (max(v for v in r["losses"] if v is not None) if any(r["losses"]) else 0)
            )
            ax.scatter(
                [lr],
                [min(y, 10.0)],
                marker="x" if r["crash"]["crash"] else "o",
                color="C3" if r["crash"]["crash"] else "C0",
            )
    ax.set_xscale("log")
    ax.set_xlabel("peak LR (no warmup)")
    ax.set_ylabel("final train loss (x = crash; capped at 10)")
    ax.set_title(f"{kind}: preln + AdamW without warmup")
    save_figure(fig, path)


# ------------------------------------------------------------------------------------------ main
def pick_best_tau(b2: dict[str, dict[str, Any]], kind: str) -> str:
    """Fewest crashes, then best mean final metric (lowest val loss / highest test accuracy)."""
    sign = 1.0 if kind == "gpt" else -1.0

    def key(label: str) -> tuple[int, float]:
        f = [v for v in b2[label]["final"] if math.isfinite(v)]
        return (b2[label]["crashes"], sign * float(np.mean(f)) if f else math.inf)

    return min(b2, key=key)


def bench_model(setup: Setup, args: argparse.Namespace, out: Path, log: Any) -> dict[str, Any]:
    data = Data(setup)
    cache = RunCache(out / "runs", none_as_nan=True)
    seeds = args.seeds
    ladder_runs: dict[float, list[dict[str, Any]]] = {}
    lr_crash = None
    need = (2 * len(seeds) + 2) // 3  # crashes in ≥ 2/3 of the seeds
    for lr in args.ladder:
        # Seeds run in order until the verdict is settled (saves a run when the first two agree).
        runs: list[dict[str, Any]] = []
        for s in seeds:
            runs.append(cached_run(cache, setup, data, B1, lr, s, log))
            crashes = sum(bool(r["crash"]["crash"]) for r in runs)
            if crashes >= need or (len(runs) - crashes) > len(seeds) - need:
                break
        ladder_runs[lr] = runs
        if sum(bool(r["crash"]["crash"]) for r in runs) >= need:
            lr_crash = lr
            break
    if lr_crash is None:
        log(f"{setup.kind}: no LR in the ladder crashed in >= 2/3 of the seeds; comparing at the largest")
        lr_crash = args.ladder[-1]
    results: dict[str, Any] = {"lr_crash": lr_crash, "ladder": {}, "compare": {}}
    for lr, runs in ladder_runs.items():
        results["ladder"][f"{lr:g}"] = summarise(runs, setup.kind)
    plot_ladder(ladder_runs, out / f"ladder_{setup.kind}.png", setup.kind)
    best_tau = best_tau_all = None
    all_groups: list[list[dict[str, Any]]] = []
    for mult in (1, 2):
        lr = lr_crash * mult
        if mult == 1:
            arms = comparison_arms(args.taus, args.taus, with_b3=True)
        else:
            arms = comparison_arms([best_tau], [best_tau_all], with_b3=False)
        groups: dict[str, list[dict[str, Any]]] = {}
        for arm in arms:
            groups[arm.label] = [cached_run(cache, setup, data, arm, lr, s, log) for s in seeds]
        all_groups.extend(groups.values())
        summ = {label: summarise(runs, setup.kind) for label, runs in groups.items()}
        if mult == 1:
            best = pick_best_tau({k: v for k, v in summ.items() if k.startswith("B2 ")}, setup.kind)
            best_tau = next(a.tau for a in arms if a.label == best)
            best = pick_best_tau({k: v for k, v in summ.items() if k.startswith("B2a ")}, setup.kind)
            best_tau_all = next(a.tau for a in arms if a.label == best)
        results["compare"][f"{lr:g}"] = summ
        warm = round(setup.warmup_frac * setup.steps)
        ylim = 2.0 * float(np.log(data.vocab_size)) if setup.kind == "gpt" else 6.0
        plot_losses(groups, out / f"loss_{setup.kind}_lr{lr:g}.png", f"{setup.kind}, peak LR {lr:g}", ylim)
        keep = {k: v for k, v in groups.items() if k.startswith(("B0", "B1", "B4", "B5"))}
        keep.update(
            {k: v for k, v in groups.items() if k.startswith("B2 ") and k.endswith(f"τ={best_tau:g}")}
        )
        keep.update(
            {k: v for k, v in groups.items() if k.startswith("B2a ") and k.endswith(f"τ={best_tau_all:g}")}
        )
        plot_stability_arms(
            keep,
            out / f"stability_{setup.kind}_lr{lr:g}.png",
            f"{setup.kind}, peak LR {lr:g}",
            warm,
            setup.steps,
        )
    results["best_tau"] = best_tau
    used = {id(r): r for runs in ladder_runs.values() for r in runs}
    used.update({id(r): r for runs in all_groups for r in runs})
    results["runs"] = len(used)
    results["run_wall_s"] = float(sum(r["wall_s"] for r in used.values()))
    results["best_tau_all"] = best_tau_all
    log(f"{setup.kind}: measuring the bound's overhead")
    results["overhead"] = measure_overhead(setup, data, reps=args.overhead_reps, steps_per_rep=5)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for checking the script")
    p.add_argument("--models", default="gpt,vit", help="comma list: gpt, vit")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default=str(ROOT / "results" / "warmup"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.seeds = parse_seeds(args.seeds)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.ladder, args.taus, args.overhead_reps = [1e-3, 1.0], [0.02], 1
        setups = {
            "gpt": Setup(
                "gpt",
                steps=30,
                batch_size=4,
                n_layer=2,
                n_embd=32,
                block_size=16,
                max_bytes=200_000,
                eval_batches=2,
                diag_every=10,
            ),
            "vit": Setup(
                "vit",
                steps=30,
                batch_size=16,
                n_layer=2,
                n_embd=32,
                train_subset=500,
                test_subset=200,
                diag_every=10,
            ),
        }
    else:
        args.ladder, args.taus, args.overhead_reps = LADDER, TAUS, 6
        setups = {
            "gpt": Setup("gpt", steps=200, batch_size=16),
            "vit": Setup("vit", steps=200, batch_size=64, n_embd=64),
        }
    log = make_log(out / "log.txt")
    t0 = time.time()
    all_results: dict[str, Any] = {"seeds": args.seeds, "ladder": args.ladder, "taus": args.taus}
    for m in models:
        if m == "vit":
            from structlearn.data.images import fashion_mnist_available

            if not fashion_mnist_available():
                log("Fashion-MNIST is not installed: skipping the ViT benchmark")
                continue
        all_results[m] = {"setup": asdict(setups[m]), **bench_model(setups[m], args, out, log)}
    all_results["total_wall_s"] = time.time() - t0
    write_report(
        out,
        "bench_warmup",
        "Warmup-free training: crash reproduction (arXiv 2505.21910)",
        report_body(all_results, models),
        all_results,
    )
    log(f"done in {all_results['total_wall_s']:.0f}s; report in {out}")
    return 0


def report_body(res: dict[str, Any], models: list[str]) -> str:
    parts = [
        f"Seeds {res['seeds']}; τ sweep {res['taus']}; LR ladder {res['ladder']} (stops at the first LR "
        "where preln+AdamW without warmup crashes in ≥ 2/3 seeds = LR_crash). Wall time of "
        f"this invocation {res['total_wall_s'] / 60:.1f} min on one thread (cached runs are not re-trained).",
    ]
    for m in models:
        if m not in res:
            continue
        r = res[m]
        s = r["setup"]
        parts.append(f"\n## {m.upper()}\n")
        parts.append(
            f"Setup: {s['n_layer']} layers, {s['n_head']} heads, d = {s['n_embd']}, batch {s['batch_size']}, "
            f"{s['steps']} steps, cosine to 10 %, fp32, no gradient clipping"
            + (
                f", context {s['block_size']} (char-level stdlib corpus)"
                if m == "gpt"
                else f", Fashion-MNIST {s['train_subset']} train / {s['test_subset']} test images"
            )
            + f". LR_crash = {r['lr_crash']:g}; best τ at LR_crash = {r['best_tau']:g} (B2), "
            f"{r['best_tau_all']:g} (B2a). {r['runs']} runs, {r['run_wall_s'] / 60:.0f} min of training "
            "(sum of per-run wall times; runs are cached in runs/ and reused)."
        )
        rows = []
        for lr, sm in r["ladder"].items():
            rows.append(
                [
                    lr,
                    f"{sm['crashes']}/{sm['n']}",
                    _fmt(sm["final"], ".4f"),
                    _fmt(sm["final_train_loss"]),
                    _fmt(sm["min_entropy"]),
                    _fmt(sm["max_sec1"]),
                ]
            )
        parts.append("\n### LR ladder: preln + AdamW, no warmup\n")
        parts.append(
            markdown_table(
                [
                    "peak LR",
                    "crashes",
                    "final " + ("val loss" if m == "gpt" else "test acc"),
                    "final train loss",
                    "min attn entropy",
                    "max SEC top-1",
                ],
                rows,
            )
        )
        for lr, summ in r["compare"].items():
            parts.append(f"\n### Arms at peak LR {lr}\n")
            parts.append(comparison_table(summ, m))
            rows = [
                [
                    k,
                    f"{v['exact_step0_max']:.2f}",
                    f"{v['exact_later_median']:.3f}",
                    f"{v['exact_later_max']:.2f}",
                ]
                for k, v in summ.items()
                if math.isfinite(v["exact_step0_max"])
            ]
            if rows:
                parts.append(
                    "\nExact realised σ₁(ΔW)/σ₁(W_{t−1}) of the bounded steps in units of τ (SVD every "
                    f"{s['diag_every']} steps; per check the maximum over the bounded matrices):\n"
                )
                parts.append(
                    markdown_table(
                        ["arm", "step 0 (cold start), max", "later checks, median", "later, max"], rows
                    )
                )
        o = r["overhead"]
        rows = []
        for base, d in o.items():
            wrapped = base + "2"
            rows.append(
                [
                    f"{base} → {wrapped}",
                    f"{d['median_step_s'][base] * 1e3:.1f}",
                    f"{d['median_opt_s'][base] * 1e3:.2f}",
                    f"{d['median_opt_s'][wrapped] * 1e3:.2f}",
                    f"{d['opt_ratio']:.2f}",
                    f"{100 * d['bound_over_full_step']:.1f} %",
                    d["samples"],
                ]
            )
        parts.append("\n### Overhead of the bound (medians, same process, interleaved)\n")
        parts.append(
            markdown_table(
                [
                    "optimizer",
                    "full step ms",
                    "opt step ms",
                    "bounded opt step ms",
                    "opt-step ratio",
                    "bound cost / full step",
                    "steps timed",
                ],
                rows,
            )
        )
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
