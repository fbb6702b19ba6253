"""Spectrally bounded updates: AdamW² / SGDW² as a wrapper around any torch optimizer.

Paper: X. Qi, C.-G. Li et al., "Taming Transformer Without Using Learning Rate Warmup", ICLR 2025,
arXiv 2505.21910. Weyl's inequality σ₁(W_{t−1} − α_t ΔW_t) ≤ σ₁(W_{t−1}) + α_t σ₁(ΔW_t) motivates
bounding the relative growth of every weight matrix per step:

    α_t = min( α_sched(t),  τ · σ₁(W_{t−1}) / σ₁(ΔW_t) ),

so that σ₁(W_t) ≤ (1 + τ)·σ₁(W_{t−1}) and no learning-rate warmup is needed (paper Alg. 1/Eq. for
AdamW²; spec warmup_free.md §2).

Implementation (spec §2.3, "wrapper" variant; our inference):
- The wrapped optimizer performs its ordinary step. For each bounded matrix the realised step
  D = W_{t−1} − W_t = α_sched·(ΔW_t + decoupled decay) is measured, σ₁(W_{t−1}) and σ₁(D) are
  estimated by warm-started power iteration (``power_iters``, default 2), and where the ratio
  r = σ₁(D)/σ₁(W_{t−1}) exceeds τ the step is shrunk by c = τ/r: W_t ← W_{t−1} − c·D. The realised
  α_t/α_sched is c. Because the rule acts on the realised step it works for any inner optimizer;
  with decoupled weight decay the decay term is scaled together with the step (deviation: the paper
  leaves the decay's α unspecified).
- W_{t−1} = 0 (e.g. zero-initialised output projections): the ratio is undefined; the scheduled step is
  applied unbounded for that step (ratio reported as NaN, bound inactive). From the next step on the
  matrix is non-zero and bounded as usual.
- Matrices are bucketed (transposed to m ≥ n and zero-padded to the bucket's shape, which changes no
  singular value); one ``torch.bmm`` power iteration per bucket covers σ₁(W_{t−1}) and σ₁(D) of all
  its matrices. A parameter with more than two dimensions is bounded as the matrix
  (shape[0], prod(shape[1:])) after dropping leading size-1 dimensions down to two (a (1, T, d)
  position table is the T×d matrix, a (1, 1, d) class token the 1×d one); an explicitly selected
  vector is the 1×n matrix (σ₁ = ‖·‖₂).
- Per-matrix ratio, activity flag, realised scale, activity count and σ₁ estimates stay on the device;
  :meth:`bound_stats` reduces them with a single host synchronisation when logging asks for it.
- τ is a certified bound (issue 12): σ₁(D) enters through an *upper* bound U ≥ σ₁(D) (the Schatten-2k
  norm from 4 squarings of the Gram matrix, :func:`~structlearn.optim.power_iteration.sigma_upper_bound`,
  ≈ 1 % above σ₁ on Adam/SGD steps, at most r^{1/64}) and σ₁(W_{t−1}) through the power-iteration
  estimate L ≤ σ₁(W_{t−1}) (a lower bound), so the step is shrunk by c = τ·L/U whenever U/L > τ and
  the realised σ₁(c·D)/σ₁(W_{t−1}) = τ·(σ₁(D)/U)·(L/σ₁(W_{t−1})) ≤ τ exactly (up to float rounding).
  Power iteration alone underestimates σ₁(D) and let the exact ratio reach 1.3–4 τ
  (docs/warmup_free.md); ``certified=False`` restores that estimate-only rule.
- Cold start: the first step starts the power iteration from random vectors, so it runs
  ``max(power_iters, COLD_ITERS)`` iterations then (a poor L would only over-shrink the step).

Memory: two float32 copies of the bounded parameters (W_{t−1} and D, stacked so that both power
iterations of a step are one batched call) plus two vectors per matrix; the certificate needs
temporaries of min(m, n)² per matrix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from structlearn.optim.power_iteration import init_vectors, power_iteration, sigma_upper_bound
from structlearn.utils.validation import check_adam_args, check_float, check_int

BOUND_CHOICES = ("matrices", "all", "attention")
COLD_ITERS = 10  # power iterations at the first step (random start vectors)
DEFAULT_SQUARINGS = 4
_ATTENTION_NAME = re.compile(r"(?:^|\.)w[qkvo]\.weight$")
_OPTIMIZER_API = ("step", "zero_grad", "state_dict", "load_state_dict")
_STATE_KEY = "spectral_bound"

ParamSelection = str | Callable[[str, torch.Tensor], bool] | Iterable[torch.Tensor | str] | None


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


# A matrix joins a larger bucket (zero-padded) when that wastes at most this factor of work, or when the
# bucket is small anyway: fewer buckets = fewer kernel launches, which dominate for small models.
PAD_WASTE = 2.0
PAD_SMALL = 4096


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
class _Bucket:
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


class SpectralBound(torch.optim.Optimizer):
    """Wrap ``optimizer`` so that no bounded matrix grows by more than τ·σ₁(W) per step.

    Args:
        optimizer: any ``torch.optim.Optimizer`` instance (or an object with ``param_groups``, ``step``,
            ``zero_grad``, ``state_dict`` and ``load_state_dict``). Its ``param_groups`` list is shared,
            so LR schedulers and parameter-group edits act on the inner optimizer.
        tau: τ > 0, the largest allowed σ₁(ΔW)/σ₁(W_{t−1}) per step.
        power_iters: power iterations per matrix and step (≥ 1; the paper: 2 suffice, 3 at most).
        params: which parameters are bounded: ``"matrices"`` (default: every parameter that is a
            matrix after dropping leading size-1 dims), ``"all"`` (also vectors such as biases and norm
            gains, bounded by their 2-norm), ``"attention"`` (names ending in
            wq/wk/wv/wo.weight), a callable ``(name, param) -> bool``, or an explicit iterable of
            parameters and/or names.
        model: used only to name parameters when the optimizer was not built from ``named_parameters()``.
        seed: seed of the random start vectors of the power iteration.
        certified: bound σ₁(D) from above (:func:`sigma_upper_bound`) so that τ is a true bound on the
            realised σ₁(ΔW)/σ₁(W_{t−1}); ``False`` = the power-iteration estimate only (can exceed τ).
        squarings: Gram squarings of the certificate (overestimate ≤ rank^{1/2^{s+2}}; default 4).
    """

    def __init__(
        self,
        optimizer: Any,
        tau: float,
        power_iters: int = 2,
        params: ParamSelection = "matrices",
        *,
        model: nn.Module | None = None,
        seed: int = 0,
        certified: bool = True,
        squarings: int = DEFAULT_SQUARINGS,
    ) -> None:
        if isinstance(optimizer, type):
            raise ValueError(f"optimizer must be an optimizer instance, got the class {optimizer.__name__}")
        groups = getattr(optimizer, "param_groups", None)
        if not (
            isinstance(groups, list)
            and groups
            and all(isinstance(g, dict) and "params" in g for g in groups)
            and all(callable(getattr(optimizer, a, None)) for a in _OPTIMIZER_API)
        ):
            raise ValueError(
                f"optimizer must be a torch.optim.Optimizer (param_groups, step, zero_grad, state_dict, "
                f"load_state_dict), got {type(optimizer).__name__}"
            )
        self.tau = check_float("tau", tau, positive=True)
        self.power_iters = check_int("power_iters", power_iters, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        if not isinstance(certified, bool):
            raise ValueError(f"certified must be True or False, got {certified!r}")
        self.certified = certified
        self.squarings = check_int("squarings", squarings, minimum=0)
        # The base class sets up hooks and bookkeeping on private copies; once ``optimizer`` is set,
        # param_groups / state / defaults are read from the inner optimizer (properties below), which
        # also covers its load_state_dict replacing those objects.
        super().__init__([{"params": list(g["params"])} for g in groups], {})
        self.optimizer = optimizer
        self._selection = params
        self._model = model
        self._steps = 0
        self._build_buckets(params, model, previous=None)

    # ------------------------------------------------------------------ shared with the inner optimizer
    def _inner_or_own(self, name: str) -> Any:
        inner = self.__dict__.get("optimizer")
        return getattr(inner, name) if hasattr(inner, name) else self.__dict__["_own_" + name]

    def _set_inner_or_own(self, name: str, value: Any) -> None:
        inner = self.__dict__.get("optimizer")
        if hasattr(inner, name):
            setattr(inner, name, value)
        else:
            self.__dict__["_own_" + name] = value

    param_groups = property(  # type: ignore[assignment]
        lambda self: self._inner_or_own("param_groups"),
        lambda self, v: self._set_inner_or_own("param_groups", v),
    )
    state = property(  # type: ignore[assignment]
        lambda self: self._inner_or_own("state"),
        lambda self, v: self._set_inner_or_own("state", v),
    )
    defaults = property(  # type: ignore[assignment]
        lambda self: self._inner_or_own("defaults"),
        lambda self, v: self._set_inner_or_own("defaults", v),
    )

    # ------------------------------------------------------------------ selection and buckets
    def _flat_params(self) -> list[tuple[str, torch.Tensor]]:
        model_names: dict[int, str] = {}
        if self._model is not None:
            model_names = {id(p): n for n, p in self._model.named_parameters()}
        out: list[tuple[str, torch.Tensor]] = []
        for g in self.param_groups:
            names = g.get("param_names")
            for j, p in enumerate(g["params"]):
                name = names[j] if names is not None else model_names.get(id(p), f"param{len(out)}")
                out.append((name, p))
        return out

    def _select(self, params: ParamSelection, flat: list[tuple[str, torch.Tensor]]) -> list[int]:
        named = any(not re.fullmatch(r"param\d+", n) for n, _ in flat)
        if params is None or isinstance(params, str):
            choice = "matrices" if params is None else params
            if choice == "matrices":
                return [i for i, (_, p) in enumerate(flat) if matrix_shape(p) is not None]
            if choice == "all":  # vectors too (biases, norm gains), bounded by their 2-norm
                return [i for i, (_, p) in enumerate(flat) if p.numel() > 0]
            if choice == "attention":
                if not named:
                    raise ValueError(
                        "params='attention' needs parameter names: build the optimizer from "
                        "model.named_parameters() or pass model="
                    )
                idx = [i for i, (n, p) in enumerate(flat) if _ATTENTION_NAME.search(n) and p.numel() > 0]
                if not idx:
                    raise ValueError("params='attention' matched no parameter named *.wq/wk/wv/wo.weight")
                return idx
            raise ValueError(
                f"params must be one of {', '.join(BOUND_CHOICES)}, a callable or a list; got {choice!r}"
            )
        if callable(params):
            return [i for i, (n, p) in enumerate(flat) if p.numel() > 0 and params(n, p)]
        by_id = {id(p): i for i, (_, p) in enumerate(flat)}
        by_name = {n: i for i, (n, _) in enumerate(flat)}
        chosen: list[int] = []
        try:
            items = list(params)
        except TypeError:
            raise ValueError(
                f"params must be a name, a callable or a list, got {type(params).__name__}"
            ) from None
        for item in items:
            if isinstance(item, torch.Tensor):
                if id(item) not in by_id:
                    raise ValueError(
                        f"a bounded parameter of shape {tuple(item.shape)} is not in the optimizer"
                    )
                i = by_id[id(item)]
            elif isinstance(item, str):
                if item not in by_name:
                    raise ValueError(f"bounded parameter name {item!r} is not in the optimizer")
                i = by_name[item]
            else:
                raise ValueError(f"params entries must be tensors or names, got {type(item).__name__}")
            if flat[i][1].numel() == 0:
                raise ValueError(f"bounded parameter {flat[i][0]!r} is empty")
            if i not in chosen:
                chosen.append(i)
        return sorted(chosen)

    def _build_buckets(self, params: ParamSelection, model: nn.Module | None, previous: dict | None) -> None:
        flat = self._flat_params()
        chosen = self._select(params, flat)
        self._names = [flat[i][0] for i in chosen]
        self._bounded_index = chosen
        devices = {flat[i][1].device for i in chosen}
        if len(devices) > 1:
            raise ValueError(f"bounded parameters lie on several devices ({sorted(map(str, devices))})")
        device = devices.pop() if devices else torch.device("cpu")
        gen = torch.Generator().manual_seed(self.seed)
        shapes = []
        for i in chosen:
            p = flat[i][1]
            if not p.is_contiguous():
                raise ValueError(f"bounded parameter {flat[i][0]!r} is not contiguous")
            shapes.append((matrix_shape(p, strict=False), p.dtype))
        self._buckets: list[_Bucket] = []
        order: list[int] = []  # bucket order → bounded order
        for shape, ks in plan_buckets(shapes):
            work = torch.promote_types(shapes[ks[0]][1], torch.float32)
            b = _Bucket(
                params=[flat[chosen[k]][1] for k in ks],
                index=[chosen[k] for k in ks],
                dims=[shapes[k][0] for k in ks],
                shape=shape,
                offset=len(order),
                buf=torch.zeros(2, len(ks), *shape, dtype=work, device=device),
                v=init_vectors(2 * len(ks), shape[1], dtype=work, device=device, generator=gen),
            )
            order += ks
            self._buckets.append(b)
        K = len(order)
        # Statistics of the last step, stacked in bucket order, on the device (float32 whatever the dtype).
        self._sigma_w = torch.zeros(K, device=device)
        self._sigma_d = torch.zeros(K, device=device)
        self._sigma_d_lower = torch.zeros(K, device=device)
        self._cold = True  # fresh random vectors: the next step iterates longer
        self._ratio = torch.zeros(K, device=device)
        self._scale = torch.ones(K, device=device)
        self._active = torch.zeros(K, dtype=torch.bool, device=device)
        self._active_count = torch.zeros(K, dtype=torch.int64, device=device)
        inverse = [0] * K
        for pos, k in enumerate(order):
            inverse[k] = pos
        self._to_bounded = torch.tensor(inverse, dtype=torch.long, device=device)
        if previous:  # carry warm-start vectors and counters of matrices that were bounded before
            for b, j, i in self._slots():
                st = previous.get(id(flat[i][1]))
                if st is not None and st["v_w"].shape == b.v[j].shape:
                    self._set_slot(b, j, st, keys=("v_w", "v_d", "active_count"))

    def _slots(self) -> list[tuple[_Bucket, int, int]]:
        """(bucket, row, flat optimizer index) of every bounded matrix, in bucket order."""
        return [(b, j, i) for b in self._buckets for j, i in enumerate(b.index)]

    _SLOT_KEYS = ("v_w", "v_d", "active_count", "ratio", "scale", "sigma_w", "sigma_d", "sigma_d_lower")

    def _get_slot(self, b: _Bucket, j: int) -> dict[str, torch.Tensor]:
        k = b.offset + j
        return {
            "v_w": b.v[j].clone(),
            "v_d": b.v[b.size + j].clone(),
            "active_count": self._active_count[k].clone(),
            "ratio": self._ratio[k].clone(),
            "scale": self._scale[k].clone(),
            "sigma_w": self._sigma_w[k].clone(),
            "sigma_d": self._sigma_d[k].clone(),
            "sigma_d_lower": self._sigma_d_lower[k].clone(),
        }

    def _set_slot(self, b: _Bucket, j: int, st: dict[str, Any], keys: tuple[str, ...] = _SLOT_KEYS) -> None:
        k = b.offset + j
        targets = {
            "v_w": (b.v, j),
            "v_d": (b.v, b.size + j),
            "active_count": (self._active_count, k),
            "ratio": (self._ratio, k),
            "scale": (self._scale, k),
            "sigma_w": (self._sigma_w, k),
            "sigma_d": (self._sigma_d, k),
            "sigma_d_lower": (self._sigma_d_lower, k),
        }
        for key in keys:
            if key not in st:  # e.g. a state saved before sigma_d_lower existed
                continue
            t, row = targets[key]
            t[row] = torch.as_tensor(st[key]).to(device=t.device, dtype=t.dtype)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # Called by the base __init__ on its private copies before self.optimizer's groups are shared.
        if "_buckets" not in self.__dict__:
            super().add_param_group(param_group)
            return
        previous = self._per_param_state(by="id")
        self.optimizer.add_param_group(param_group)
        self._build_buckets(self._selection, self._model, previous)

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
    def _snapshot(self) -> None:
        for b in self._buckets:
            torch._foreach_copy_(b.rows_w, b.views())

    @torch.no_grad()
    def _bound(self) -> None:
        if not self._buckets:
            return
        tau = self.tau
        iters = max(self.power_iters, COLD_ITERS) if self._cold else self.power_iters
        views, s_w, s_d, s_up = [], [], [], []
        for b in self._buckets:
            cur = b.views()
            b.buf[1].copy_(b.buf[0])
            torch._foreach_sub_(b.rows_d, cur)  # D = W_{t−1} − W_t, the realised step
            B = b.size
            sigma, b.v = power_iteration(b.buf.view(2 * B, *b.shape), b.v, iters)
            s_w.append(sigma[:B])
            s_d.append(sigma[B:])
            if self.certified:  # U ≥ σ₁(D): the padded zeros change no singular value
                s_up.append(sigma_upper_bound(b.buf[1], self.squarings))
            views.append(cur)
        self._cold = False
        self._sigma_w = torch.cat(s_w).float()
        self._sigma_d_lower = torch.cat(s_d).float()
        # The σ₁(D) the rule divides by: certified upper bound, or the (lower) power-iteration estimate.
        self._sigma_d = torch.cat(s_up).float() if self.certified else self._sigma_d_lower
        tiny = torch.finfo(torch.float32).tiny
        ratio = torch.where(self._sigma_w > 0, self._sigma_d / self._sigma_w.clamp_min(tiny), math.nan)
        ratio = torch.where(self._sigma_d == 0, 0.0, ratio)
        active = ratio > tau  # NaN (W_{t−1} = 0) compares False: the scheduled step stays unbounded
        scale = torch.where(active, tau / ratio.clamp_min(tiny), 1.0)
        for b, cur in zip(self._buckets, views, strict=True):
            # W_t ← W_{t−1} − c·D from the snapshot (not W_t + (1 − c)·D: with c ≪ 1 that cancels and
            # its rounding, eps·‖D‖, can exceed the tiny bounded step); untouched where c = 1.
            # lerp(W_{t−1}, W_t, c) is evaluated as W_{t−1} + c·(W_t − W_{t−1}) for c < ½ (no rounding
            # of 1 − c) and as W_t − (1 − c)·(W_t − W_{t−1}) otherwise, exactly W_t at c = 1. Computed in
            # the snapshot (working dtype), then copied into the weights.
            c = scale[b.offset : b.offset + b.size].to(b.buf.dtype)
            ends = [x if x.dtype == b.buf.dtype else x.to(b.buf.dtype) for x in cur]
            torch._foreach_lerp_(b.rows_w, ends, list(c.unbind()))
            torch._foreach_copy_(cur, b.rows_w)
        self._ratio, self._scale, self._active = ratio, scale, active
        self._active_count += active

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One step of the inner optimizer, then shrink the matrices whose ratio exceeds τ."""
        self._snapshot()
        loss = self.optimizer.step() if closure is None else self.optimizer.step(closure)
        self._bound()
        self._steps += 1
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    # ------------------------------------------------------------------ logging
    @property
    def bounded_names(self) -> list[str]:
        """Names of the bounded parameters, in the order of :meth:`bound_tensors`."""
        return list(self._names)

    @property
    def bounded_params(self) -> list[torch.Tensor]:
        """The bounded parameters, in ``bounded_names`` order."""
        flat = [p for g in self.param_groups for p in g["params"]]
        return [flat[i] for i in self._bounded_index]

    @property
    def steps(self) -> int:
        return self._steps

    def bound_tensors(self) -> dict[str, torch.Tensor]:
        """Per-matrix values of the last step, on device, in ``bounded_names`` order.

        ratio = σ̂₁(D)/σ̂₁(W_{t−1}) before bounding (NaN where W_{t−1} = 0; with ``certified`` an upper
        bound on the exact ratio); active = ratio > τ; scale = realised α_t/α_sched; active_count =
        steps with the bound active; sigma = σ₁(W_{t−1}) (power iteration, ≤ exact), sigma_d = the σ₁(D)
        used (certified upper bound, or the power-iteration estimate), sigma_d_lower = σ₁(D) from power
        iteration (≤ exact).
        """
        idx = self._to_bounded
        return {
            "ratio": self._ratio[idx],
            "scale": self._scale[idx],
            "active": self._active[idx],
            "active_count": self._active_count[idx],
            "sigma": self._sigma_w[idx],
            "sigma_d": self._sigma_d[idx],
            "sigma_d_lower": self._sigma_d_lower[idx],
        }

    def bound_stats(self, per_param: bool = False, prefix: str = "bound/") -> dict[str, float]:
        """Scalars for a log line (one host sync). Empty before the first step."""
        if self._steps == 0 or not self._names:
            return {}
        t = self.bound_tensors()
        ratio = t["ratio"].float()
        finite = torch.isfinite(ratio)
        summary = torch.stack(
            [
                t["active"].float().mean(),
                torch.where(finite, ratio, -math.inf).max(),
                ratio.nanmedian(),
                t["scale"].float().mean(),
                t["scale"].float().min(),
                t["active_count"].float().sum() / (self._steps * len(self._names)),
                (~finite).float().sum(),
            ]
        ).tolist()
        summary[1] = summary[1] if math.isfinite(summary[1]) else math.nan
        keys = [
            "active_frac",
            "ratio_max",
            "ratio_median",
            "scale_mean",
            "scale_min",
            "active_rate",
            "n_undefined",
        ]
        out = {prefix + k: float(v) for k, v in zip(keys, summary, strict=True)}
        if per_param:
            cols = torch.stack([ratio, t["scale"].float(), t["sigma"].float()]).cpu().tolist()
            for j, name in enumerate(self._names):
                out[f"{prefix}ratio/{name}"] = cols[0][j]
                out[f"{prefix}scale/{name}"] = cols[1][j]
                out[f"{prefix}sigma/{name}"] = cols[2][j]
        return out

    # ------------------------------------------------------------------ state
    def _per_param_state(self, by: str) -> dict:
        return {(id(b.params[j]) if by == "id" else i): self._get_slot(b, j) for b, j, i in self._slots()}

    def state_dict(self) -> dict[str, Any]:
        """The inner optimizer's state dict plus a ``spectral_bound`` entry (vectors, counters)."""
        sd = dict(self.optimizer.state_dict())
        sd[_STATE_KEY] = {
            "tau": self.tau,
            "power_iters": self.power_iters,
            "certified": self.certified,
            "squarings": self.squarings,
            "steps": self._steps,
            "bounded": list(self._bounded_index),
            "state": self._per_param_state(by="index"),
        }
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not isinstance(state_dict, dict) or _STATE_KEY not in state_dict:
            raise ValueError("state dict has no 'spectral_bound' entry: it was not saved by SpectralBound")
        sd = dict(state_dict)
        bound = sd.pop(_STATE_KEY)
        saved = [int(i) for i in bound["bounded"]]
        if saved != self._bounded_index:
            raise ValueError(
                f"state dict bounds {len(saved)} parameters at other positions than this "
                f"SpectralBound ({len(self._bounded_index)})"
            )
        per = {int(k): v for k, v in bound["state"].items()}
        for b, j, i in self._slots():
            st = per[i]
            if tuple(st["v_w"].shape) != tuple(b.v[j].shape):
                raise ValueError(
                    f"power-iteration vector of parameter {i} has shape {tuple(st['v_w'].shape)}"
                )
            self._set_slot(b, j, st)
        self._steps = int(bound["steps"])
        self._cold = self._steps == 0  # restored vectors are warm
        self.optimizer.load_state_dict(sd)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._patch_step_function()

    def __repr__(self) -> str:
        inner = type(self.optimizer).__name__
        return (
            f"SpectralBound({inner}, tau={self.tau}, power_iters={self.power_iters}, "
            f"bounded={len(self._names)} matrices in {len(self._buckets)} buckets)"
        )


class AdamW2(SpectralBound):
    """AdamW² (arXiv 2505.21910): ``torch.optim.AdamW`` with the spectral step bound.

    Same keywords as ``torch.optim.AdamW`` plus ``tau``, ``power_iters`` and ``bound_params`` (the
    ``params`` selection of :class:`SpectralBound`). The default τ = 0.02 is our choice from the spec's
    bracket {0.005, …, 0.05}; the paper's values are unverified.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        tau: float = 0.02,
        power_iters: int = 2,
        bound_params: ParamSelection = "matrices",
        model: nn.Module | None = None,
        amsgrad: bool = False,
        foreach: bool | None = None,
        seed: int = 0,
        certified: bool = True,
        squarings: int = DEFAULT_SQUARINGS,
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)  # tau, power_iters: SpectralBound checks them
        inner = torch.optim.AdamW(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, foreach=foreach
        )
        super().__init__(
            inner,
            tau,
            power_iters,
            bound_params,
            model=model,
            seed=seed,
            certified=certified,
            squarings=squarings,
        )


class SGDW2(SpectralBound):
    """SGDW² : momentum SGD with decoupled decay (:class:`structlearn.optim.SGDW`) plus the bound.

    Same keywords as ``SGDW`` plus ``tau``, ``power_iters`` and ``bound_params``. The bound is the
    optimizer side of the warmup-free recipe (arXiv 2505.21910) applied to the DNT optimizer
    (arXiv 2507.17501); the combination is ours.
    """

    def __init__(
        self,
        params: Any,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        tau: float = 0.02,
        power_iters: int = 2,
        bound_params: ParamSelection = "matrices",
        model: nn.Module | None = None,
        seed: int = 0,
        certified: bool = True,
        squarings: int = DEFAULT_SQUARINGS,
    ) -> None:
        from structlearn.optim.sgdw import SGDW  # the DNT optimizer lives beside this file

        inner = SGDW(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(
            inner,
            tau,
            power_iters,
            bound_params,
            model=model,
            seed=seed,
            certified=certified,
            squarings=squarings,
        )
