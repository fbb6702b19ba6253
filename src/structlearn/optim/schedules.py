"""Cosine learning-rate decay to a final fraction, with optional linear warmup (spec dnt.md §3, §7.1).

For step t (0-based) of T total steps, W warmup steps and final fraction f:

    m(t) = (t + 1) / W                                            for t < W
    m(t) = f + (1 − f) · ½ · (1 + cos(π · (t − W) / (T − W)))     for W ≤ t < T
    m(t) = f                                                      for t ≥ T

so the rate climbs to the peak at t = W − 1, starts the cosine at the peak and reaches f·peak at t = T.
The multiplier applies to every group's base rate (``LambdaLR``).
"""

from __future__ import annotations

import functools
import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from structlearn.utils.validation import check_float, check_int


def _check(total_steps: int, warmup_steps: int, min_lr_frac: float) -> None:
    check_int("total_steps", total_steps, minimum=1)
    check_int("warmup_steps", warmup_steps, minimum=0)
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_steps ({warmup_steps}) must be smaller than total_steps ({total_steps})")
    check_float("min_lr_frac", min_lr_frac, nonnegative=True, maximum=1.0)


def lr_multiplier(step: int, total_steps: int, warmup_steps: int = 0, min_lr_frac: float = 0.1) -> float:
    """The factor m(t) above (validated; use :func:`make_scheduler` in a loop)."""
    _check(total_steps, warmup_steps, min_lr_frac)
    check_int("step", step, minimum=0)
    return _multiplier(step, total_steps, warmup_steps, min_lr_frac)


def _multiplier(step: int, total_steps: int, warmup_steps: int, min_lr_frac: float) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr_frac
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr_frac + (1.0 - min_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, min_lr_frac: float = 0.1
) -> LambdaLR:
    """``LambdaLR`` with the multiplier above; call ``scheduler.step()`` after each optimizer step."""
    _check(total_steps, warmup_steps, min_lr_frac)
    fn = functools.partial(
        _multiplier, total_steps=total_steps, warmup_steps=warmup_steps, min_lr_frac=min_lr_frac
    )
    return LambdaLR(optimizer, fn)
