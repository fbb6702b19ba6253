"""Spectrally bounded updates: AdamW² / SGDW² as a wrapper around any torch optimizer.

Paper: X. Qi, C.-G. Li et al., "Taming Transformer Without Using Learning Rate Warmup", ICLR 2025,
arXiv 2505.21910: α_t = min(α_sched(t), τ·σ₁(W_{t−1})/σ₁(ΔW_t)), so σ₁(W_t) ≤ (1 + τ)·σ₁(W_{t−1}) and
no learning-rate warmup is needed (spec warmup_free.md §2). The tensor work (buckets, power iteration,
certificate, shrink rule) is in :mod:`structlearn.optim.bound_core`, the choice of bounded parameters in
:mod:`structlearn.optim.bound_selection`; this module is the optimizer wrapper and its state.

Wrapper (spec §2.3, "wrapper" variant; our inference):
- The wrapped optimizer performs its ordinary step. For each bounded matrix the realised step
  D = W_{t−1} − W_t = α_sched·(ΔW_t + decoupled decay) is measured, σ₁(W_{t−1}) and σ₁(D) are
  estimated, and where the ratio r = σ₁(D)/σ₁(W_{t−1}) exceeds τ the step is shrunk by c = τ/r:
  W_t ← W_{t−1} − c·D. The realised α_t/α_sched is c. Because the rule acts on the realised step it
  works for any inner optimizer; with decoupled weight decay the decay term is scaled together with the
  step (deviation: the paper leaves the decay's α unspecified).
- W_{t−1} = 0 (e.g. zero-initialised output projections): the ratio is undefined; the scheduled step is
  applied unbounded for that step (ratio reported as NaN, bound inactive).
- τ is a certified bound (issue 12): σ₁(D) enters through an upper bound U ≥ σ₁(D) (Schatten-2k norm,
  ≈ 1 % above σ₁ on Adam/SGD steps, at most r^{1/64}) and σ₁(W_{t−1}) through the power-iteration
  estimate L ≤ σ₁(W_{t−1}), so the realised ratio is ≤ τ exactly (up to float rounding). Power
  iteration alone let the exact ratio reach 1.3–4 τ (docs/warmup_free.md); ``certified=False`` restores
  that estimate-only rule.
- Cold start: the first step starts the power iteration from random vectors, so it runs
  ``max(power_iters, COLD_ITERS)`` iterations then (a poor L would only over-shrink the step).
- Per-step statistics stay on the device; :meth:`SpectralBound.bound_stats` syncs once when logging.

Size (~370 lines, over the ~350 guideline): one job, the wrapper and its state round trip, whose parts
share private per-matrix slots, plus its two 30-line presets ``AdamW2`` / ``SGDW2``. The presets stay
here because ``structlearn.optim.spectral_bound.AdamW2`` is a pinned import path
(tests/optim/test_spectral_bound.py::test_old_import_paths_still_work) and re-exporting them from a
module that imports this one would be an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from structlearn.optim import bound_core as core
from structlearn.optim.bound_core import (  # re-exported: the old import path
    COLD_ITERS,
    DEFAULT_SQUARINGS,
    PAD_SMALL,
    PAD_WASTE,
    Bucket,
    matrix_shape,
    plan_buckets,
)
from structlearn.optim.bound_selection import BOUND_CHOICES, ParamSelection, named_flat_params, select_params
from structlearn.optim.sgdw import SGDW
from structlearn.utils.validation import check_adam_args, check_float, check_int

__all__ = [  # the names this module has always offered (re-exported from the core modules)
    "BOUND_CHOICES",
    "COLD_ITERS",
    "DEFAULT_SQUARINGS",
    "PAD_SMALL",
    "PAD_WASTE",
    "SGDW2",
    "AdamW2",
    "ParamSelection",
    "SpectralBound",
    "matrix_shape",
    "plan_buckets",
]

_OPTIMIZER_API = ("step", "zero_grad", "state_dict", "load_state_dict")
_STATE_KEY = "spectral_bound"


class SpectralBound(torch.optim.Optimizer):
    """Wrap ``optimizer`` so that no bounded matrix grows by more than τ·σ₁(W) per step.

    Args:
        optimizer: any ``torch.optim.Optimizer`` instance (or an object with ``param_groups``, ``step``,
            ``zero_grad``, ``state_dict`` and ``load_state_dict``). Its ``param_groups`` list is shared,
            so LR schedulers and parameter-group edits act on the inner optimizer.
        tau: τ > 0, the largest allowed σ₁(ΔW)/σ₁(W_{t−1}) per step.
        power_iters: power iterations per matrix and step (≥ 1; the paper: 2 suffice, 3 at most).
        params: which parameters are bounded (:mod:`~structlearn.optim.bound_selection`): ``"matrices"``
            (default), ``"all"``, ``"attention"``, a callable ``(name, param) -> bool`` or an iterable.
        model: used only to name parameters when the optimizer was not built from ``named_parameters()``.
        seed: seed of the random start vectors of the power iteration.
        certified: bound σ₁(D) from above (:func:`sigma_upper_bound`) so that τ is a true bound on the
            realised σ₁(ΔW)/σ₁(W_{t−1}); ``False`` = the power-iteration estimate only (can exceed τ).
        squarings: Gram squarings of the certificate (overestimate ≤ rank^{1/2^{s+2}}; default 4). On the
            CPU a matrix stops earlier once its step is decided (``bound_core.CERT_RTOL``).
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
    def _build_buckets(self, params: ParamSelection, model: nn.Module | None, previous: dict | None) -> None:
        flat = named_flat_params(self.param_groups, model)
        chosen = select_params(params, flat)
        self._names = [flat[i][0] for i in chosen]
        self._bounded_index = chosen
        devices = {flat[i][1].device for i in chosen}
        if len(devices) > 1:
            raise ValueError(f"bounded parameters lie on several devices ({sorted(map(str, devices))})")
        device = devices.pop() if devices else torch.device("cpu")
        for i in chosen:
            if not flat[i][1].is_contiguous():
                raise ValueError(f"bounded parameter {flat[i][0]!r} is not contiguous")
        params_ = [flat[i][1] for i in chosen]
        self._buckets, order = core.make_buckets(params_, chosen, seed=self.seed, device=device)
        self._stats = core.StepStats(order, device)
        self._cold = True  # fresh random vectors: the next step iterates longer
        if previous:  # carry warm-start vectors and counters of matrices that were bounded before
            for bk, j, i in self._slots():
                st = previous.get(id(flat[i][1]))
                if st is not None and st["v_w"].shape == bk.v[j].shape:
                    core.set_slot(bk, j, self._stats, st, keys=("v_w", "v_d", "active_count"))

    def _slots(self) -> list[tuple[Bucket, int, int]]:
        """(bucket, row, flat optimizer index) of every bounded matrix, in bucket order."""
        return [(b, j, i) for b in self._buckets for j, i in enumerate(b.index)]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # Called by the base __init__ on its private copies before self.optimizer's groups are shared.
        if "_buckets" not in self.__dict__:
            super().add_param_group(param_group)
            return
        previous = self._per_param_state(by="id")
        self.optimizer.add_param_group(param_group)
        self._build_buckets(self._selection, self._model, previous)

    # ------------------------------------------------------------------ the step
    def _snapshot(self) -> None:
        core.snapshot(self._buckets)

    def _bound(self) -> None:
        if not self._buckets:
            return
        iters = max(self.power_iters, COLD_ITERS) if self._cold else self.power_iters
        measured = core.measure(self._buckets, iters, self.certified, self.squarings, self.tau)
        views, sigma_w, sigma_d_lower, sigma_d = measured
        self._cold = False
        ratio, active, scale = core.shrink_rule(sigma_w, sigma_d, self.tau)
        core.apply_shrink(self._buckets, views, scale)
        st = self._stats
        st.sigma_w, st.sigma_d_lower, st.sigma_d = sigma_w, sigma_d_lower, sigma_d
        st.ratio, st.scale, st.active = ratio, scale, active
        st.active_count += active

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
        return self._stats.per_matrix()

    def bound_stats(self, per_param: bool = False, prefix: str = "bound/") -> dict[str, float]:
        """Scalars for a log line (one host sync). Empty before the first step."""
        if self._steps == 0 or not self._names:
            return {}
        return core.summarize(self.bound_tensors(), self._steps, self._names, per_param, prefix)

    # ------------------------------------------------------------------ state
    def _per_param_state(self, by: str) -> dict:
        st = self._stats
        return {(id(b.params[j]) if by == "id" else i): core.get_slot(b, j, st) for b, j, i in self._slots()}

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
            core.set_slot(b, j, self._stats, st)
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
        bound = {"model": model, "seed": seed, "certified": certified, "squarings": squarings}
        super().__init__(inner, tau, power_iters, bound_params, **bound)


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
        inner = SGDW(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        bound = {"model": model, "seed": seed, "certified": certified, "squarings": squarings}
        super().__init__(inner, tau, power_iters, bound_params, **bound)
