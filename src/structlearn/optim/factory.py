"""Optimizers by name: ``make_optimizer("adamw" | "sgdw" | "adamw2" | "sgdw2" | "muon", params, ...)``.

``OPTIMIZERS`` is a plain dict name → constructor taking ``(params, *, lr, weight_decay, momentum,
betas, eps)``; other components register more entries by adding to it. AdamW (the DNT paper's
baseline, arXiv 2507.17501) is torch's, with its multi-tensor (``foreach``) implementation;
SGDW is :class:`structlearn.optim.sgdw.SGDW`. Both decay weights decoupled from the gradient.
When ``params`` are groups (:func:`structlearn.optim.param_groups.param_groups`), each group's own
``weight_decay`` overrides the default passed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from structlearn.optim.sgdw import SGDW
from structlearn.utils.validation import check_float

Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def _adamw(
    params: Params,
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    betas: tuple[float, float],
    eps: float,
) -> Optimizer:
    del momentum  # AdamW's first moment is steered by betas[0]
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=True)


def _sgdw(
    params: Params,
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    betas: tuple[float, float],
    eps: float,
    nesterov: bool = False,
) -> Optimizer:
    del betas, eps
    return SGDW(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def _adamw2(
    params: Params,
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    betas: tuple[float, float],
    eps: float,
    **bound: Any,
) -> Optimizer:
    """AdamW² (arXiv 2505.21910); ``bound``: tau, power_iters, bound_params, model."""
    from structlearn.optim.spectral_bound import AdamW2

    del momentum
    return AdamW2(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=True, **bound)


def _sgdw2(
    params: Params,
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    betas: tuple[float, float],
    eps: float,
    **bound: Any,
) -> Optimizer:
    """SGDW with the spectral step bound; ``bound``: tau, power_iters, bound_params, model."""
    from structlearn.optim.spectral_bound import SGDW2

    del betas, eps
    return SGDW2(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **bound)


def _muon(
    params: Params,
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    betas: tuple[float, float],
    eps: float,
    adam_lr: float = 1e-3,
    muon_momentum: float = 0.95,
) -> Optimizer:
    """Muon on the hidden matrices + AdamW (``adam_lr``, ``betas``) on embeddings, gains and biases.

    ``momentum`` (SGDW's, default 0.9) is not Muon's: Muon keeps its authors' 0.95 (``muon_momentum``).
    """
    from structlearn.optim.muon import MuonAdamW

    del momentum
    return MuonAdamW(
        params,
        lr=lr,
        momentum=muon_momentum,
        weight_decay=weight_decay,
        adam_lr=adam_lr,
        betas=betas,
        eps=eps,
    )


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "adamw": _adamw,
    "sgdw": _sgdw,
    "adamw2": _adamw2,
    "sgdw2": _sgdw2,
    "muon": _muon,
}


def make_optimizer(
    name: str,
    params: Params,
    *,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
    **extra: Any,
) -> Optimizer:
    """Build optimizer ``name``; an unknown name raises a ValueError listing the choices.

    ``extra`` keywords go to constructors that take more (e.g. ``tau`` for a spectrally bounded
    optimizer registered by another module); a constructor that does not take one raises ValueError.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(sorted(OPTIMIZERS))}")
    check_float("lr", lr, positive=True)
    check_float("weight_decay", weight_decay, nonnegative=True)
    check_float("momentum", momentum, nonnegative=True)
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    check_float("eps", eps, positive=True)
    try:
        return OPTIMIZERS[name](
            params, lr=lr, weight_decay=weight_decay, momentum=momentum, betas=tuple(betas), eps=eps, **extra
        )
    except TypeError as exc:
        if extra and "unexpected keyword argument" in str(exc):
            raise ValueError(
                f"optimizer {name!r} does not accept {', '.join(sorted(extra))} ({exc})"
            ) from None
        raise


def optimizer_state_bytes(optimizer: Optimizer, *, include_scalars: bool = False) -> int:
    """Bytes of the optimizer's per-parameter state tensors.

    By default only buffers with the parameter's shape count (AdamW: exp_avg, exp_avg_sq; SGDW:
    momentum_buffer); ``include_scalars=True`` adds bookkeeping tensors such as AdamW's 0-d ``step``
    (4 bytes per parameter tensor).
    """
    total = 0
    for p, state in optimizer.state.items():
        for v in state.values():
            if isinstance(v, torch.Tensor) and (include_scalars or v.shape == p.shape):
                total += v.numel() * v.element_size()
    return total
