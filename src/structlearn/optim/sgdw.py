"""Momentum SGD with decoupled weight decay (mSGDW), the optimizer DNT trains with (arXiv 2507.17501).

Per parameter W with gradient g, momentum μ, learning rate η_t and weight decay λ (spec dnt.md §3;
decoupling as in Loshchilov & Hutter, arXiv 1711.05101, Alg. 1 "SGDW"):

    buf ← μ·buf + g                       (the only state: one tensor per parameter)
    W   ← W − η_t·buf − η_t·λ·W           (both terms use the W before the step)

With ``nesterov=True`` the step direction is g + μ·buf instead of buf. ``torch.optim.SGD``'s
``weight_decay`` adds λW to g *before* the momentum (coupled L2), which is a different method: its
decay is amplified by 1/(1−μ) and mixed into the momentum.

The update of a group is four ``torch._foreach_*`` calls (no Python loop over tensors' entries, no
host synchronisation). With ``momentum=0`` no buffer is kept (the step is plain SGDW).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from structlearn.utils.validation import check_float


class SGDW(Optimizer):
    """SGD with momentum and decoupled weight decay; state ``momentum_buffer`` per parameter."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        check_float("lr", lr, nonnegative=True)
        check_float("momentum", momentum, nonnegative=True)
        if momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {momentum}")
        check_float("weight_decay", weight_decay, nonnegative=True)
        if nesterov and momentum == 0:
            raise ValueError("nesterov momentum requires momentum > 0")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "nesterov": bool(nesterov)}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise ValueError("SGDW does not support sparse gradients")
            grads = [p.grad for p in params]
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            if mu > 0:
                bufs = []
                for p in params:  # loop over tensors (not entries): fetch or create the one buffer
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    bufs.append(state["momentum_buffer"])
                torch._foreach_mul_(bufs, mu)
                torch._foreach_add_(bufs, grads)
                if group["nesterov"]:
                    direction = torch._foreach_add(grads, bufs, alpha=mu)
                else:
                    direction = bufs
            else:
                direction = grads
            if wd != 0:
                torch._foreach_mul_(params, 1.0 - lr * wd)
            torch._foreach_add_(params, direction, alpha=-lr)
        return loss
