"""One optimizer step, task-agnostic: forward/backward (with gradient accumulation and an optional
compiled model), ``after_backward`` hooks, clipping, optimizer and scheduler step (:class:`TrainStep`);
and the device-side sums between logging steps (:class:`LossWindow`), the loop's only host syncs.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from structlearn.train.config import TrainConfig
from structlearn.train.distributed import DistContext
from structlearn.train.task_api import AutocastFactory


def _first_line(exc: Exception, default: str = "") -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else default


class TrainStep:
    """``step(x, y, after_backward)`` → (detached mean loss, gradient norm or ``None``, learning rate).

    ``model`` is what gradients are taken through (the DDP wrapper under ``torchrun``); with
    ``config.compile`` it is wrapped in ``torch.compile``, and any compiler failure — at wrapping or, since
    torch compiles lazily, at the first call — warns once and falls back to the eager model.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        ctx: DistContext,
        autocast: AutocastFactory,
    ) -> None:
        self.config, self.model, self.optimizer, self.scheduler = config, model, optimizer, scheduler
        self.ctx, self.autocast = ctx, autocast
        self.params = [p for p in model.parameters() if p.requires_grad]
        self._compiled: Any = None
        self._compile_ok = False
        if config.compile:
            try:
                self._compiled = torch.compile(model)
            except Exception as exc:  # e.g. an unsupported Python/platform: eager instead
                warnings.warn(
                    f"torch.compile failed ({type(exc).__name__}: {_first_line(exc)[:200]}); running eager",
                    stacklevel=2,
                )

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, after_backward: Callable[[], None]
    ) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        loss = self.forward_backward(x, y)
        after_backward()  # gradients averaged across ranks, before clipping
        gnorm = None
        if self.config.grad_clip is not None:
            gnorm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip, foreach=True)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, gnorm, lr

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss and gradients of one step: ``grad_accum`` micro-batches, each loss scaled 1/N.

        The micro-batches split one batch of N·B samples into equal parts, so the summed gradient
        equals that of the one large batch (the losses are means over equal-sized parts). DDP
        all-reduces only on the last micro-batch (``no_sync``). Returns the step's mean loss (detached).
        """
        n = self.config.grad_accum
        if n == 1:
            with self.autocast():
                _, loss = self._forward(x, y)
            loss.backward()
            return loss.detach()
        total = torch.zeros((), device=x.device)
        xs, ys = x.chunk(n), y.chunk(n)
        for i in range(n):
            sync = i == n - 1 or not self.ctx.enabled
            ctx = contextlib.nullcontext() if sync else self.model.no_sync()
            with ctx:
                with self.autocast():
                    _, loss = self._forward(xs[i], ys[i])
                (loss / n).backward()
            total += loss.detach().float() / n
        return total

    def _forward(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        """The compiled model when ``config.compile`` worked, else eager (see the class docstring)."""
        if self._compiled is None:
            return self.model(x, y)
        if self._compile_ok:
            return self._compiled(x, y)
        try:
            out = self._compiled(x, y)
            self._compile_ok = True
            return out
        except Exception as exc:  # any compiler failure: fall back, never stop the run
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}: {_first_line(exc, type(exc).__name__)[:200]}); "
                "running eager",
                stacklevel=2,
            )
            self._compiled = None
            return self.model(x, y)


@dataclass
class WindowStats:
    """The steps since the last logging step, reduced across processes."""

    mean_loss: float
    mean_grad_norm: float
    first_bad_step: int | None  # first step whose loss was non-finite (on any rank)
    seconds: float
    items: int


class LossWindow:
    """Sums of the losses (and clipped gradient norms) since the last logging step, kept on the device so
    that a step never waits for the host; :meth:`reduce` is the one sync, at logging steps."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.gnorm_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.bad_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.reset()

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.gnorm_sum.zero_()
        self.n, self.items = 0, 0
        self.t_start = time.perf_counter()

    def add(self, step: int, loss: torch.Tensor, gnorm: torch.Tensor | None, items: int) -> None:
        if gnorm is not None:
            self.gnorm_sum += gnorm.double()
        self.loss_sum += loss.double()
        self.bad_step = torch.where((self.bad_step < 0) & ~torch.isfinite(loss), step, self.bad_step)
        self.n += 1
        self.items += items

    def reduce(self, ctx: DistContext) -> WindowStats:
        """Collective under DDP (every rank calls it at the same steps)."""
        stats = ctx.all_reduce(torch.stack([self.loss_sum, self.gnorm_sum]))
        inf = torch.full((), math.inf, dtype=torch.float64, device=self.device)
        first_bad = float(ctx.all_reduce(torch.where(self.bad_step < 0, inf, self.bad_step.double()), "min"))
        seconds = time.perf_counter() - self.t_start
        count = self.n * ctx.world_size
        return WindowStats(
            mean_loss=float(stats[0]) / count,
            mean_grad_norm=float(stats[1]) / count,
            first_bad_step=int(first_bad) if math.isfinite(first_bad) else None,
            seconds=seconds,
            items=self.items,
        )
