"""Functional core of the spectral step bound: matrix views, shape buckets, measurement, shrink rule.

Paper: X. Qi, C.-G. Li et al., "Taming Transformer Without Using Learning Rate Warmup", ICLR 2025,
arXiv 2505.21910. Weyl's inequality σ₁(W_{t−1} − α_t ΔW_t) ≤ σ₁(W_{t−1}) + α_t σ₁(ΔW_t) motivates
bounding the relative growth of every weight matrix per step:

    α_t = min( α_sched(t),  τ · σ₁(W_{t−1}) / σ₁(ΔW_t) ),

so that σ₁(W_t) ≤ (1 + τ)·σ₁(W_{t−1}) (paper Alg. 1; spec warmup_free.md §2). This module holds the
pieces that act on tensors only; :mod:`structlearn.optim.spectral_bound` wires them around an optimizer.

- A parameter is bounded as the matrix (shape[0], prod(shape[1:])) after dropping leading size-1
  dimensions down to two (a (1, T, d) position table is T×d, a (1, 1, d) class token 1×d); an explicitly
  selected vector is the 1×n matrix (σ₁ = ‖·‖₂).
- Matrices are bucketed (transposed to m ≥ n and zero-padded to the bucket's shape, which changes no
  singular value) so that the work of a step is a few ``torch.bmm`` calls per bucket, whatever the
  number of matrices: power iteration on W_{t−1}, the Gram matrix G = DᵀD of the realised step
  D = W_{t−1} − W_t, D's power iteration on G, and the certificate's squarings of G.
- Certified rule (issue 12): σ₁(D) enters through an upper bound U ≥ σ₁(D) (Schatten-2k norm,
  :func:`~structlearn.optim.power_iteration.sigma_upper_bound`) and σ₁(W_{t−1}) through the
  power-iteration estimate L ≤ σ₁(W_{t−1}); the step is shrunk by c = τ·L/U where U/L > τ, so the
  realised σ₁(c·D)/σ₁(W_{t−1}) ≤ τ exactly (up to float rounding).

Cost (issue 12, measured on the CPU GPT of bench_lm): the certificate's Gram product and 4 squarings
are about two thirds of the bound's time; the rest is memory passes (snapshot, D, the shrink, one pass
each per matrix on the CPU) and W's power iteration. On the CPU (:data:`EARLY_STOP_DEVICES`) the
certificate has a level −1: a matrix with ‖D‖_F ≤ τ·σ̂₁(W_{t−1}) is inactive without a Gram product
(late in a decayed run, every matrix); the others stop squaring once their step is decided
(:data:`CERT_RTOL`), and the shrink pass is skipped where c = 1. On that GPT at batch 12, ``_bound()``
takes about 35 % less time when every matrix is decided by ‖D‖_F (stop 24: 3.0 → 1.9 ms) and 3–5 % more
when few or none are (the norms and the host read).

Memory: two float32 copies of the bounded parameters (W_{t−1} and D) plus two vectors per matrix; the
certificate needs temporaries of min(m, n)² per matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from structlearn.optim.power_iteration import (  # the trusted kernels: SpectralBound validated once
    frobenius_upper_bound,
    gram,
    init_vectors,
    power_iteration_gram_trusted,
    power_iteration_trusted,
    sigma_upper_bound_gram,
)

COLD_ITERS = 10  # power iterations at the first step (random start vectors)
DEFAULT_SQUARINGS = 4
# A matrix joins a larger bucket (zero-padded) when that wastes at most this factor of work, or when the
# bucket is small anyway: fewer buckets = fewer kernel launches, which dominate for small models.
PAD_WASTE = 2.0
PAD_SMALL = 4096
# Devices where D and the shrunk weights are formed one matrix at a time in one memory pass (CPU: foreach
# ops are a per-tensor loop anyway); elsewhere whole-bucket/foreach ops keep the kernel launches few.
ONE_PASS_DEVICES = ("cpu",)
# Devices where host synchronisation is free (the CPU): there the certificate stops squaring a matrix once
# its bound decides the step, at or below τ·σ̂₁(W_{t−1}) (inactive whatever the tighter bound) or within
# CERT_RTOL of D's power-iteration estimate (a lower bound: further squarings could only shrink the step
# less, by at most that factor). Elsewhere every matrix takes every squaring (no host sync in the step).
EARLY_STOP_DEVICES = ("cpu",)
CERT_RTOL = 0.01


def matrix_shape(p: torch.Tensor, *, strict: bool = True) -> tuple[int, int] | None:
    """The (m, n) matrix a parameter is bounded as; None for vectors/scalars when ``strict``."""
    dims = list(p.shape)
    if p.numel() == 0 or (strict and len(dims) < 2):
        return None
    while len(dims) > 2 and dims[0] == 1:  # (1, T, d) position tables are T×d matrices
        dims.pop(0)
    if len(dims) >= 2:
        return dims[0], math.prod(dims[1:])
    return 1, p.numel()


def plan_buckets(
    shapes: list[tuple[tuple[int, int], torch.dtype]],
) -> list[tuple[tuple[int, int], list[int]]]:
    """Group matrices into zero-padded buckets: [(bucket shape (M, N), member indices)].

    Matrices are taken as m ≥ n (σ₁ is invariant to transposition) and zero padding does not change
    singular values, so a bucket holds every matrix that fits in it (M ≥ m, N ≥ n, same dtype) with at
    most ``PAD_WASTE``× the work, or when the bucket has at most ``PAD_SMALL`` entries.
    """
    canon = [((max(sh), min(sh)), dt) for sh, dt in shapes]
    order = sorted(range(len(shapes)), key=lambda k: -canon[k][0][0] * canon[k][0][1])
    buckets: list[tuple[tuple[int, int], torch.dtype, list[int]]] = []
    for k in order:
        (m, n), dt = canon[k]
        fits = [
            b
            for b in buckets
            if b[1] == dt
            and b[0][0] >= m
            and b[0][1] >= n
            and (b[0][0] * b[0][1] <= PAD_WASTE * m * n or b[0][0] * b[0][1] <= PAD_SMALL)
        ]
        if fits:
            min(fits, key=lambda b: b[0][0] * b[0][1])[2].append(k)
        else:
            buckets.append(((m, n), dt, [k]))
    return [(shape, sorted(ks)) for shape, _, ks in buckets]


@dataclass
class Bucket:
    """Bounded matrices zero-padded to one shape: both power iterations of a step are one bmm batch."""

    params: list[torch.Tensor]
    index: list[int]  # flat position of each parameter in the optimizer's param_groups
    dims: list[tuple[int, int]]  # each parameter's matrix shape (before any transposition)
    shape: tuple[int, int]  # the bucket's padded shape (M, N), M ≥ N
    offset: int  # position of the bucket's first matrix in the stacked statistics
    buf: torch.Tensor  # (2, B, M, N): [0] = W_{t−1}, [1] = the realised step D; zero padding
    v: torch.Tensor  # (2B, N): right singular vector estimates, W's then D's

    def __post_init__(self) -> None:
        self.transposed = [m < n for m, n in self.dims]
        sizes = [(n, m) if t else (m, n) for (m, n), t in zip(self.dims, self.transposed, strict=True)]
        self.rows_w = [self.buf[0, j, :a, :b] for j, (a, b) in enumerate(sizes)]
        self.rows_d = [self.buf[1, j, :a, :b] for j, (a, b) in enumerate(sizes)]

    @property
    def size(self) -> int:
        return len(self.params)

    def views(self) -> list[torch.Tensor]:
        # Re-derived every step: p.data may have been replaced (model.to(), load_state_dict(assign=True)).
        out = []
        for p, dims, t in zip(self.params, self.dims, self.transposed, strict=True):
            x = p.detach().view(dims)
            out.append(x.T if t else x)
        return out


def make_buckets(
    params: list[torch.Tensor], index: list[int], *, seed: int, device: torch.device
) -> tuple[list[Bucket], list[int]]:
    """Buckets for ``params`` (contiguous, on ``device``) and the bucket order → ``params`` order map.

    ``index`` is each parameter's flat position in the optimizer (kept for the state dict). Buffers are
    float32 (or the parameter dtype when wider); start vectors come from a CPU generator seeded ``seed``.
    """
    gen = torch.Generator().manual_seed(seed)
    shapes = [(matrix_shape(p, strict=False), p.dtype) for p in params]
    buckets: list[Bucket] = []
    order: list[int] = []  # bucket order → params order
    for shape, ks in plan_buckets(shapes):  # type: ignore[arg-type]
        work = torch.promote_types(shapes[ks[0]][1], torch.float32)
        buckets.append(
            Bucket(
                params=[params[k] for k in ks],
                index=[index[k] for k in ks],
                dims=[shapes[k][0] for k in ks],  # type: ignore[misc]
                shape=shape,
                offset=len(order),
                buf=torch.zeros(2, len(ks), *shape, dtype=work, device=device),
                v=init_vectors(2 * len(ks), shape[1], dtype=work, device=device, generator=gen),
            )
        )
        order += ks
    return buckets, order


@torch.no_grad()
def snapshot(buckets: list[Bucket]) -> None:
    """Copy W_{t−1} of every bounded matrix into its bucket (before the inner optimizer steps)."""
    for b in buckets:
        torch._foreach_copy_(b.rows_w, b.views())


@torch.no_grad()
def measure(
    buckets: list[Bucket], iters: int, certified: bool, squarings: int, tau: float | None = None
) -> tuple[list[list[torch.Tensor]], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Form D = W_{t−1} − W_t and estimate the singular values of every bounded matrix.

    Returns (current weight views per bucket, σ̂₁(W_{t−1}) [power iteration, ≤ exact], σ̂₁(D) [power
    iteration, ≤ exact], the σ₁(D) the rule divides by [certified upper bound, or the estimate]), the
    three stacked in bucket order as float32. Updates each bucket's warm-start vectors.

    Certified: the certificate forms G = DᵀD (N×N, the bucket has M ≥ N) anyway, so D's power iteration
    runs on G (N² per mat-vec instead of M·N) and only W_{t−1}'s on the matrices. Estimate-only: both
    power iterations are one bmm over the stacked [W_{t−1}; D]. With ``tau`` on :data:`EARLY_STOP_DEVICES`
    the certificate stops early per matrix (‖D‖_F, or :data:`CERT_RTOL`), so the σ₁(D) returned for a
    matrix whose step is decided early is a looser (still certified) upper bound.
    """
    views, s_w, s_d, s_up = [], [], [], []
    for b in buckets:
        cur = b.views()
        if b.buf.device.type in ONE_PASS_DEVICES:
            for w0, w1, d in zip(b.rows_w, cur, b.rows_d, strict=True):
                torch.sub(w0, w1, out=d)  # D = W_{t−1} − W_t, the realised step
        else:  # few kernel launches on accelerators
            b.buf[1].copy_(b.buf[0])
            torch._foreach_sub_(b.rows_d, cur)
        B = b.size
        if certified:  # U ≥ σ₁(D): the padded zeros change no singular value
            sigma_w, v_w = power_iteration_trusted(b.buf[0], b.v[:B], iters)
            early = tau is not None and b.buf.device.type in EARLY_STOP_DEVICES
            sigma_d, upper, v_d = _certify_step(b, iters, squarings, tau * sigma_w if early else None)
            b.v = torch.cat([v_w, v_d])
            s_w.append(sigma_w)
            s_d.append(sigma_d)
            s_up.append(upper)
        else:
            sigma, b.v = power_iteration_trusted(b.buf.view(2 * B, *b.shape), b.v, iters)
            s_w.append(sigma[:B])
            s_d.append(sigma[B:])
        views.append(cur)
    sigma_w = torch.cat(s_w).float()
    sigma_d_lower = torch.cat(s_d).float()
    sigma_d = torch.cat(s_up).float() if certified else sigma_d_lower
    return views, sigma_w, sigma_d_lower, sigma_d


def _gram_chain(
    D: torch.Tensor, v: torch.Tensor, iters: int, squarings: int, inactive_at: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(σ̂₁(D) by power iteration on G = DᵀD, the certificate U ≥ σ₁(D) from G, D's new vectors)."""
    G = gram(D)
    lower, v_new = power_iteration_gram_trusted(G, v, iters)
    good = None if inactive_at is None else torch.maximum(inactive_at, (1.0 + CERT_RTOL) * lower)
    return lower, sigma_upper_bound_gram(G, squarings, D.shape[1], good, D), v_new


def _certify_step(
    b: Bucket, iters: int, squarings: int, inactive_at: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(σ̂₁(D) by power iteration, U ≥ σ₁(D), D's new vectors) for the steps D of bucket ``b``.

    Without ``inactive_at``: the Gram chain for every matrix. With it (τ·σ̂₁(W_{t−1}) per matrix; the CPU
    only, it reads the decision on the host): a matrix whose ‖D‖_F is at or below it is decided inactive
    without the Gram product (the certificate's level −1; U = ‖D‖_F, σ̂₁(D) from a power iteration on D);
    the others take the Gram chain, which stops once their step is decided (:data:`CERT_RTOL`).
    """
    B = b.size
    D, v = b.buf[1], b.v[B:]
    if inactive_at is None:
        return _gram_chain(D, v, iters, squarings, None)
    fro = frobenius_upper_bound(D)
    decided = (fro <= inactive_at).tolist()
    if not any(decided):
        return _gram_chain(D, v, iters, squarings, inactive_at)
    if all(decided):
        lower, v_new = power_iteration_trusted(D, v, iters)
        return lower, fro, v_new
    done = [j for j in range(B) if decided[j]]
    rest = [j for j in range(B) if not decided[j]]
    lower, upper, v_new = torch.empty_like(fro), fro.clone(), torch.empty_like(v)
    lower[done], v_new[done] = power_iteration_trusted(D[done], v[done], iters)
    lower[rest], upper[rest], v_new[rest] = _gram_chain(D[rest], v[rest], iters, squarings, inactive_at[rest])
    return lower, upper, v_new


def shrink_rule(
    sigma_w: torch.Tensor, sigma_d: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ratio, active, scale) per matrix: r = σ₁(D)/σ₁(W_{t−1}), active = r > τ, c = τ/r where active.

    W_{t−1} = 0 gives r = NaN (undefined), which compares False: the scheduled step stays unbounded. A
    zero step gives r = 0.
    """
    tiny = torch.finfo(torch.float32).tiny
    ratio = torch.where(sigma_w > 0, sigma_d / sigma_w.clamp_min(tiny), math.nan)
    ratio = torch.where(sigma_d == 0, 0.0, ratio)
    active = ratio > tau
    scale = torch.where(active, tau / ratio.clamp_min(tiny), 1.0)
    return ratio, active, scale


@torch.no_grad()
def apply_shrink(buckets: list[Bucket], views: list[list[torch.Tensor]], scale: torch.Tensor) -> None:
    """W_t ← W_{t−1} − c·D for every bounded matrix (c = ``scale`` in bucket order).

    Computed from the snapshot (not W_t + (1 − c)·D: with c ≪ 1 that cancels and its rounding, eps·‖D‖,
    can exceed the tiny bounded step); untouched where c = 1. lerp(W_{t−1}, W_t, c) is evaluated as
    W_{t−1} + c·(W_t − W_{t−1}) for c < ½ (no rounding of 1 − c) and as W_t − (1 − c)·(W_t − W_{t−1})
    otherwise, exactly W_t at c = 1. Computed in the snapshot (working dtype), then copied into the weights.
    """
    for b, cur in zip(buckets, views, strict=True):
        c = scale[b.offset : b.offset + b.size].to(b.buf.dtype)
        if b.buf.device.type in ONE_PASS_DEVICES and all(x.dtype == b.buf.dtype for x in cur):
            # One pass straight into the weights (the same lerp; the snapshot is refreshed next step),
            # none where c = 1: W_t stays as the inner optimizer left it (host reads are free here).
            for w0, w1, cj in zip(b.rows_w, cur, c.tolist(), strict=True):
                if cj != 1.0:
                    torch.lerp(w0, w1, cj, out=w1)
            continue
        weights = list(c.unbind())
        ends = [x if x.dtype == b.buf.dtype else x.to(b.buf.dtype) for x in cur]
        torch._foreach_lerp_(b.rows_w, ends, weights)
        torch._foreach_copy_(cur, b.rows_w)


class StepStats:
    """Per-matrix values of the last step, stacked in bucket order, on the device (float32 σ's).

    ``order`` maps bucket order → bounded order; :meth:`per_matrix` returns bounded order. Nothing here
    synchronises with the host except :func:`summarize`.
    """

    KEYS = ("active_count", "ratio", "scale", "sigma_w", "sigma_d", "sigma_d_lower")  # per-slot state

    def __init__(self, order: list[int], device: torch.device) -> None:
        K = len(order)
        self.sigma_w = torch.zeros(K, device=device)
        self.sigma_d = torch.zeros(K, device=device)  # the σ₁(D) the rule divided by
        self.sigma_d_lower = torch.zeros(K, device=device)
        self.ratio = torch.zeros(K, device=device)
        self.scale = torch.ones(K, device=device)
        self.active = torch.zeros(K, dtype=torch.bool, device=device)
        self.active_count = torch.zeros(K, dtype=torch.int64, device=device)
        inverse = [0] * K
        for pos, k in enumerate(order):
            inverse[k] = pos
        self.to_bounded = torch.tensor(inverse, dtype=torch.long, device=device)

    def per_matrix(self) -> dict[str, torch.Tensor]:
        idx = self.to_bounded
        return {
            "ratio": self.ratio[idx],
            "scale": self.scale[idx],
            "active": self.active[idx],
            "active_count": self.active_count[idx],
            "sigma": self.sigma_w[idx],
            "sigma_d": self.sigma_d[idx],
            "sigma_d_lower": self.sigma_d_lower[idx],
        }


SUMMARY_KEYS = (
    "active_frac",
    "ratio_max",
    "ratio_median",
    "scale_mean",
    "scale_min",
    "active_rate",
    "n_undefined",
)


def summarize(
    t: dict[str, torch.Tensor], steps: int, names: list[str], per_param: bool, prefix: str
) -> dict[str, float]:
    """Scalars for a log line from :meth:`StepStats.per_matrix` values (one host sync)."""
    ratio = t["ratio"].float()
    finite = torch.isfinite(ratio)
    summary = torch.stack(
        [
            t["active"].float().mean(),
            torch.where(finite, ratio, -math.inf).max(),
            ratio.nanmedian(),
            t["scale"].float().mean(),
            t["scale"].float().min(),
            t["active_count"].float().sum() / (steps * len(names)),
            (~finite).float().sum(),
        ]
    ).tolist()
    summary[1] = summary[1] if math.isfinite(summary[1]) else math.nan
    out = {prefix + k: float(v) for k, v in zip(SUMMARY_KEYS, summary, strict=True)}
    if per_param:
        cols = torch.stack([ratio, t["scale"].float(), t["sigma"].float()]).cpu().tolist()
        for j, name in enumerate(names):
            out[f"{prefix}ratio/{name}"] = cols[0][j]
            out[f"{prefix}scale/{name}"] = cols[1][j]
            out[f"{prefix}sigma/{name}"] = cols[2][j]
    return out


def get_slot(b: Bucket, j: int, stats: StepStats) -> dict[str, torch.Tensor]:
    """The state of matrix ``j`` of bucket ``b``: its two warm-start vectors and its statistics."""
    k = b.offset + j
    out = {"v_w": b.v[j].clone(), "v_d": b.v[b.size + j].clone()}
    return out | {key: getattr(stats, key)[k].clone() for key in StepStats.KEYS}


def set_slot(
    b: Bucket, j: int, stats: StepStats, st: dict[str, Any], keys: tuple[str, ...] | None = None
) -> None:
    """Restore what :func:`get_slot` returned (only ``keys`` if given; keys missing in ``st`` are kept)."""
    k = b.offset + j
    targets = {"v_w": (b.v, j), "v_d": (b.v, b.size + j)}
    targets |= {key: (getattr(stats, key), k) for key in StepStats.KEYS}
    for key in keys or targets:
        if key not in st:  # e.g. a state saved before sigma_d_lower existed
            continue
        t, row = targets[key]
        t[row] = torch.as_tensor(st[key]).to(device=t.device, dtype=t.dtype)
