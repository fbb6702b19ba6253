"""Heavy-tail statistics of weight gradients (DNT, arXiv 2507.17501, Figure 1; spec dnt.md §7.4).

DNT's claim is that its norms concentrate the distribution of gradient entries, which is what lets one
SGD learning rate fit every coordinate. Called after ``backward()`` and before clipping, on the
weights W_l with ≥ 2 dimensions (the matrices; gains and biases are left out), with g the pooled
vector of all their gradient entries:

- ``q999_over_q50``: quantile ratio q_{0.999}(|g|) / q_{0.5}(|g|), estimated with ``torch.quantile`` on a
  uniform sample (with replacement) of at most 2²⁴ entries drawn from a fixed-seed generator
  (``torch.quantile``'s input-size limit); exact when there are fewer entries.
- ``top1_energy_share``: share of ‖g‖² carried by the largest 1 % of entries (⌈n/100⌉ of them), exact.
- ``excess_kurtosis``: m₄/m₂² − 3 of the entries of g (central moments, float64); 0 for a Gaussian.
- ``grad_norm_max_over_median``: max_l ‖g_l‖ / median_l ‖g_l‖ over tensors (Tomihari & Sato 2025's
  block heterogeneity).
- ``rel_grad_norm_max_over_median``: the same spread for ‖g_l‖/‖W_l‖.
- ``grad_norm``: ‖g‖₂ of the pooled matrices (before clipping).

Medians are ``torch.quantile(·, 0.5)`` (the mean of the two middle values for an even count). The
whole dict costs one host synchronisation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from structlearn.utils.validation import check_float, check_int

MAX_QUANTILE_SAMPLES = 2**24
STAT_KEYS: tuple[str, ...] = (
    "q999_over_q50",
    "top1_energy_share",
    "excess_kurtosis",
    "grad_norm_max_over_median",
    "rel_grad_norm_max_over_median",
    "grad_norm",
)
_TINY = 1e-30


def _weights(model: nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    params = model.parameters() if isinstance(model, nn.Module) else model
    out = [p for p in params if p.dim() >= 2 and p.grad is not None]
    if not out:
        raise ValueError("no weight (≥ 2-D parameter) has a gradient; call backward() first")
    return out


def _pooled(weights: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.grad.detach().reshape(-1) for p in weights]).float()


def gradient_stats(
    model: nn.Module | Iterable[torch.Tensor],
    *,
    max_samples: int = MAX_QUANTILE_SAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """The statistics listed in the module docstring, as plain floats (keys :data:`STAT_KEYS`)."""
    check_int("max_samples", max_samples, minimum=2, maximum=MAX_QUANTILE_SAMPLES)
    weights = _weights(model)
    g = _pooled(weights)
    a = g.abs()
    n = a.numel()
    if n > max_samples:
        gen = torch.Generator(device=a.device).manual_seed(seed)
        sample = a[torch.randint(n, (max_samples,), generator=gen, device=a.device)]
    else:
        sample = a
    q50, q999 = torch.quantile(sample, torch.tensor([0.5, 0.999], device=a.device)).unbind()

    sq = a.square()
    k = max(1, math.ceil(0.01 * n))
    top_share = torch.topk(sq, k, sorted=False).values.sum() / sq.sum().clamp_min(_TINY)

    g64 = g.double()
    d = g64 - g64.mean()
    m2 = d.square().mean()
    kurt = d.pow(4).mean() / m2.square().clamp_min(_TINY) - 3.0

    grads = [p.grad.detach() for p in weights]
    gnorm = torch.stack(torch._foreach_norm(grads)).float()
    wnorm = torch.stack(torch._foreach_norm([p.detach() for p in weights])).float()
    rel = gnorm / wnorm.clamp_min(_TINY)
    spread = gnorm.max() / torch.quantile(gnorm, 0.5).clamp_min(_TINY)
    rel_spread = rel.max() / torch.quantile(rel, 0.5).clamp_min(_TINY)

    # q50 = 0 (over half the entries are exactly 0): report inf rather than nan.
    ratio = torch.where(q50 > 0, q999 / q50.clamp_min(_TINY), torch.full_like(q50, float("inf")))
    values = torch.stack(
        [
            ratio.float().cpu(),
            top_share.float().cpu(),
            kurt.float().cpu(),
            spread.cpu(),
            rel_spread.cpu(),
            gnorm.square().sum().sqrt().cpu(),
        ]
    ).tolist()  # the one host sync
    return dict(zip(STAT_KEYS, values, strict=True))


def gradient_histogram(
    model: nn.Module | Iterable[torch.Tensor],
    bins: int = 80,
    log10_range: tuple[float, float] = (-12.0, 2.0),
) -> dict[str, list[float] | int]:
    """Histogram of log10|g| over the pooled weight gradients, with log-spaced edges.

    Returns ``edges`` (bins + 1 values of |g|), ``counts`` (bins), ``n`` (all entries), ``n_zero``,
    ``n_below`` and ``n_above`` (non-zero entries outside the range). Fixed edges make runs comparable.
    """
    check_int("bins", bins, minimum=1)
    lo, hi = (check_float("log10_range[0]", log10_range[0]), check_float("log10_range[1]", log10_range[1]))
    if lo >= hi:
        raise ValueError(f"log10_range must be increasing, got {log10_range!r}")
    a = _pooled(_weights(model)).abs()
    nonzero = a[a > 0]
    la = nonzero.log10()
    counts = torch.histc(la, bins=bins, min=lo, max=hi)
    summary = torch.stack(
        [
            torch.tensor(float(a.numel())),
            (a == 0).sum().float(),
            (la < lo).sum().float(),
            (la > hi).sum().float(),
        ]
    ).tolist()
    edges = torch.logspace(lo, hi, bins + 1, dtype=torch.float64).tolist()
    return {
        "edges": edges,
        "counts": [int(c) for c in counts.tolist()],
        "n": int(summary[0]),
        "n_zero": int(summary[1]),
        "n_below": int(summary[2]),
        "n_above": int(summary[3]),
    }
