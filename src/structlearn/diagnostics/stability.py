"""Training-stability monitor: attention collapse, W_qᵀW_k spectra, σ₁ of weights, step-bound activity.

Logs, every ``every`` steps on a fixed probe batch, the quantities of "Taming Transformer Without Using
Learning Rate Warmup" (arXiv 2505.21910, spec warmup_free.md §4.3): per layer and head the mean
attention entropy and effective rank of A, σ₁(W_qᵀW_k), SEC(s) for s = 1..3 and the effective rank of
W_qᵀW_k; σ₁ of every bounded matrix; and, when the optimizer is a :class:`SpectralBound`, the bound's
activity and realised α_t/α_sched (every ``bound_every`` steps, one host sync each time).

:class:`StabilityHook` follows the training engine's hook protocol (``after_step(trainer, step)``
returning a dict merged into the JSONL log); :func:`plot_stability` draws the logged records.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from structlearn.diagnostics.attention import (
    attention_entropy,
    attention_erank,
    attention_maps,
    attention_modules,
    qk_diagnostics,
    spectral_norms,
)
from structlearn.utils.validation import check_int

Probe = torch.Tensor | tuple | Callable[[nn.Module], Any]


def _forward_fn(probe: Probe) -> Callable[[nn.Module], Any]:
    if callable(probe) and not isinstance(probe, torch.Tensor):
        return probe
    if isinstance(probe, torch.Tensor):
        return lambda model: model(probe)
    if isinstance(probe, tuple):
        return lambda model: model(*probe)
    raise ValueError(
        f"probe must be a tensor, a tuple of model inputs or a callable, got {type(probe).__name__}"
    )


def _matrices_of(model: nn.Module, optimizer: Any) -> list[tuple[str, torch.Tensor]]:
    """The bounded matrices of a SpectralBound optimizer (by identity), else every ≥ 2-D weight."""
    params = getattr(optimizer, "bounded_params", None)
    if params is not None:
        bounded = {id(p) for p in params}
        return [(n, p) for n, p in model.named_parameters() if id(p) in bounded]
    return [(n, p) for n, p in model.named_parameters() if p.dim() >= 2]


@torch.no_grad()
def stability_metrics(
    model: nn.Module,
    probe: Probe,
    optimizer: Any = None,
    *,
    per_head: bool = True,
    sigma_of_weights: bool = True,
) -> dict[str, float]:
    """One flat dict of floats (the log line) for ``model`` on ``probe``; see the module docstring.

    Keys: ``attn/entropy/l{l}h{h}``, ``attn/erank/l{l}h{h}``, ``qk/sigma1|sec1|sec2|sec3|erank/l{l}h{h}``
    (when ``per_head``), summaries ``attn/entropy_min|mean``, ``attn/erank_at_min_entropy``,
    ``qk/sigma1_max``, ``qk/sec1_max``, ``qk/sec3_max``, ``qk/erank_min``, and ``sigma1/<param>`` plus
    ``sigma1_max`` over the bounded matrices (all ≥ 2-D weights when the optimizer is unbounded).
    """
    maps = attention_maps(model, _forward_fn(probe))
    ent = torch.stack([attention_entropy(A) for A in maps])  # (L, H)
    erk = torch.stack([attention_erank(A) for A in maps])
    qk = qk_diagnostics(model)
    out: dict[str, float] = {}
    i_min = int(ent.argmin())
    out["attn/entropy_min"] = float(ent.min())
    out["attn/entropy_mean"] = float(ent.mean())
    out["attn/erank_at_min_entropy"] = float(erk.flatten()[i_min])
    out["attn/erank_min"] = float(erk.min())
    out["qk/sigma1_max"] = float(qk["sigma1"].max())
    out["qk/sec1_max"] = float(qk["sec"][..., 0].max())
    out["qk/sec3_max"] = float(qk["sec"][..., -1].max())
    out["qk/erank_min"] = float(qk["erank"].min())
    if per_head:
        L, H = ent.shape
        for layer in range(L):
            for h in range(H):
                tag = f"l{layer}h{h}"
                out[f"attn/entropy/{tag}"] = float(ent[layer, h])
                out[f"attn/erank/{tag}"] = float(erk[layer, h])
                out[f"qk/sigma1/{tag}"] = float(qk["sigma1"][layer, h])
                for j in range(qk["sec"].shape[-1]):
                    out[f"qk/sec{j + 1}/{tag}"] = float(qk["sec"][layer, h, j])
                out[f"qk/erank/{tag}"] = float(qk["erank"][layer, h])
    if sigma_of_weights:
        sig = spectral_norms(_matrices_of(model, optimizer))
        out.update({f"sigma1/{n}": v for n, v in sig.items()})
        if sig:
            out["sigma1_max"] = max(sig.values())
    return out


class StabilityHook:
    """Engine hook logging :func:`stability_metrics` every ``every`` steps on a fixed probe batch.

    ``probe``: model input tensor, tuple of inputs, or ``callable(model)`` running the forward pass;
    ``None`` takes the first ``probe_size`` inputs of the trainer's fixed probe batch at ``on_start``.
    With ``bound_every`` > 0 the statistics of a :class:`SpectralBound` optimizer (``bound/…``) are
    added every ``bound_every`` steps. Records are kept in ``self.records`` (and in checkpoints) and
    ``on_end`` plots them with the training loss to ``<out_dir>/stability.png``.
    """

    def __init__(
        self,
        probe: Probe | None = None,
        every: int = 10,
        bound_every: int = 0,
        per_head: bool = True,
        probe_size: int = 8,
    ) -> None:
        self.forward = None if probe is None else _forward_fn(probe)
        self.every = check_int("every", every, minimum=1)
        self.bound_every = check_int("bound_every", bound_every, minimum=0)
        self.probe_size = check_int("probe_size", probe_size, minimum=1)
        self.per_head = per_head
        self.records: list[dict[str, float]] = []

    def metrics(self, model: nn.Module, optimizer: Any, step: int) -> dict[str, float] | None:
        out: dict[str, float] = {}
        if self.bound_every and step % self.bound_every == 0 and hasattr(optimizer, "bound_stats"):
            out.update(optimizer.bound_stats())
        if step % self.every == 0:
            if self.forward is None:
                raise ValueError(
                    "StabilityHook has no probe batch (pass probe= or run it inside the Trainer)"
                )
            out.update(stability_metrics(model, self.forward, optimizer, per_head=self.per_head))
        if not out:
            return None
        self.records.append({"step": float(step), **out})
        return out

    def on_start(self, trainer: Any) -> None:
        if self.forward is None:
            x, _ = trainer.probe_batch()
            self.forward = _forward_fn(x[: self.probe_size])

    def after_step(self, trainer: Any, step: int) -> dict[str, float] | None:
        if not getattr(trainer, "is_main", True):
            return None
        return self.metrics(trainer.model, trainer.optimizer, step)

    def on_end(self, trainer: Any, result: Any) -> None:
        out_dir = getattr(trainer, "out_dir", None)
        if out_dir is None or not getattr(trainer, "is_main", True) or not self.records:
            return
        keep = ("train_loss", "val_loss", "grad/")
        losses = [
            {"step": float(r["step"]), **{k: v for k, v in r.items() if k.startswith(keep)}}
            for r in getattr(trainer, "history", [])
        ]
        plot_stability(
            losses + self.records,
            Path(out_dir) / "stability.png",
            warmup_steps=getattr(trainer.config, "warmup_steps", None) or None,
            title=f"{trainer.config.task}: {trainer.config.norm} + {trainer.config.optimizer}",
        )

    def state_dict(self) -> dict[str, Any]:
        """The records so far (JSON values), so a resumed run's plot covers the whole run."""
        return {"records": [dict(r) for r in self.records]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = [dict(r) for r in state.get("records", [])]


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], r[key]) for r in records if key in r and r[key] is not None]
    if not pts:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(pts, dtype=np.float64)
    return a[:, 0], a[:, 1]


def warmup_curve(steps: np.ndarray, warmup_steps: int) -> np.ndarray:
    """The linear warmup factor min(1, (t + 1)/warmup) that AdamW² is said to replace."""
    return np.minimum(1.0, (np.asarray(steps, dtype=np.float64) + 1.0) / max(1, warmup_steps))


def plot_stability(
    records: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    *,
    warmup_steps: int | None = None,
    title: str | None = None,
) -> Path:
    """Eight panels over training: loss, attention entropy (min/mean) and erank, SEC, σ₁(W_qᵀW_k),
    σ₁ of the bounded matrices, the bound's activity with α_t/α_sched against a linear warmup, the
    gradient heavy-tail statistics (``grad/…``, when logged) and the effective rank of W_qᵀW_k."""
    from structlearn.utils.plotting import save_figure, subplots

    fig, axes = subplots(2, 4, figsize=(20, 8))
    ax = axes.ravel()
    for key in ("loss", "train_loss", "val_loss"):
        x, y = _series(records, key)
        if x.size:
            ax[0].plot(x, y, label=key)
    ax[0].set_title("loss")
    for key, style in (("attn/entropy_min", "-"), ("attn/entropy_mean", "--")):
        x, y = _series(records, key)
        ax[1].plot(x, y, style, label=key.split("/")[-1])
    x, y = _series(records, "attn/erank_at_min_entropy")
    ax[1].plot(x, y, ":", label="erank(A) at min entropy")
    ax[1].set_title("attention entropy (nats) / erank")
    for key in ("qk/sec1_max", "qk/sec3_max"):
        x, y = _series(records, key)
        ax[2].plot(x, y, label=key.split("/")[-1])
    ax[2].set_ylim(0, 1.05)
    ax[2].set_title("spectral energy concentration of W_qᵀW_k")
    x, y = _series(records, "qk/sigma1_max")
    ax[3].plot(x, y)
    ax[3].set_title("max σ₁(W_qᵀW_k)")
    keys = sorted({k for r in records for k in r if k.startswith("sigma1/")})
    for key in keys:
        x, y = _series(records, key)
        ax[4].plot(x, y, lw=0.8)
    ax[4].set_title(f"σ₁ of {len(keys)} matrices")
    for a in (ax[3], ax[4]):
        if any(
            math.isfinite(v) and v > 0
            for r in records
            for k, v in r.items()
            if k.startswith(("sigma1", "qk/sigma1"))
        ):
            a.set_yscale("log")
    for key, style in (("bound/scale_mean", "-"), ("bound/scale_min", "--"), ("bound/active_frac", ":")):
        x, y = _series(records, key)
        if x.size:
            ax[5].plot(x, y, style, label=key.split("/")[-1])
    if warmup_steps:
        steps = np.asarray(sorted({r["step"] for r in records}), dtype=np.float64)
        ax[5].plot(
            steps, warmup_curve(steps, warmup_steps), "k-", lw=0.8, label=f"linear warmup {warmup_steps}"
        )
    ax[5].set_title("α_t/α_sched and bound activity")
    for key in ("grad/q999_over_q50", "grad/excess_kurtosis", "grad/grad_norm_max_over_median"):
        x, y = _series(records, key)
        if x.size:
            ax[6].plot(x, y, label=key.split("/")[-1])
    if ax[6].lines:
        ax[6].set_yscale("log")
    else:
        ax[6].text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax[6].transAxes)
    ax[6].set_title("gradient heavy tails (--grad-stats-every)")
    x, y = _series(records, "qk/erank_min")
    ax[7].plot(x, y, label="min over heads")
    ax[7].set_title("effective rank of W_qᵀW_k")
    for a in ax:
        a.set_xlabel("step")
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def has_attention(model: nn.Module) -> bool:
    """True when ``model`` contains modules the attention diagnostics can read."""
    return bool(attention_modules(model))
