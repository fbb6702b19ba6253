"""Hook protocol: add diagnostics to the training loop without editing it.

A hook is any object with some of these methods (all optional; the loop looks them up once):

- ``on_start(trainer)`` — after the model, optimizer and data exist (and after a resume has restored
  them), before the first step.
- ``after_backward(trainer, step)`` — gradients of update ``step`` (1-based) are in ``.grad``, already
  averaged across DDP ranks, before clipping and before the optimizer step.
- ``after_step(trainer, step) -> dict[str, float] | None`` — after update ``step`` and the scheduler
  step. A returned dict is merged into that step's metrics record (a record is written for that step
  even when it is not a ``log_every`` step). Values should be Python floats: converting tensors is the
  hook's (deliberate, occasional) host sync.
- ``on_end(trainer, result)`` — after the last step, the final evaluation and checkpoint.
- ``state_dict()`` / ``load_state_dict(state)`` — saved in and restored from checkpoints so a resumed
  run's hook continues where it stopped (tensors and JSON values only).

Hooks run on every DDP rank; ``trainer.is_main`` tells rank 0, which alone writes files. Useful trainer
attributes: ``config``, ``model`` (unwrapped), ``optimizer``, ``scheduler``, ``task``, ``device``,
``out_dir`` (``None`` when the run writes nothing), ``probe_batch()``, ``autocast()``, ``history``,
``last_loss`` (the detached loss of the step just taken, on the device: reading it syncs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from torch import nn

from structlearn.diagnostics.gradients import gradient_stats
from structlearn.utils.validation import check_int


@runtime_checkable
class Trainer(Protocol):
    """What hooks read from the training engine (:class:`structlearn.train.engine.Trainer`); a protocol
    here so that this module does not import the engine, which imports it."""

    model: nn.Module
    optimizer: Any
    is_main: bool


@runtime_checkable
class TrainHook(Protocol):
    """Documentation type: implement any subset of the methods listed in the module docstring."""


class GradientStatsHook:
    """Logs ``diagnostics.gradients.gradient_stats`` every ``every`` steps, after backward, before clipping.

    Keys are prefixed ``grad/`` in the metrics record (``grad/q999_over_q50``, ...).
    """

    def __init__(self, every: int, stats_fn: Callable[[nn.Module], dict[str, float]] | None = None) -> None:
        if every <= 0:
            raise ValueError(f"gradient statistics interval must be > 0, got {every}")
        self.every = every
        self._stats_fn = stats_fn
        self._pending: dict[str, float] | None = None

    def _fn(self) -> Callable[[nn.Module], dict[str, float]]:
        return gradient_stats if self._stats_fn is None else self._stats_fn

    def after_backward(self, trainer: Trainer, step: int) -> None:
        if step % self.every == 0 and trainer.is_main:
            stats = self._fn()(trainer.model)
            self._pending = {f"grad/{k}": float(v) for k, v in stats.items()}

    def after_step(self, trainer: Trainer, step: int) -> dict[str, Any] | None:
        out, self._pending = self._pending, None
        return out


class BoundLogHook:
    """The spectral bound's statistics (``optimizer.bound_stats()``, see
    :mod:`structlearn.optim.spectral_bound`) every ``every`` steps; the engine adds it for any optimizer
    that has ``bound_stats``."""

    def __init__(self, every: int) -> None:
        self.every = check_int("every", every, minimum=1)

    def after_step(self, trainer: Trainer, step: int) -> dict[str, float] | None:
        opt = trainer.optimizer
        if step % self.every or not hasattr(opt, "bound_stats") or not getattr(trainer, "is_main", True):
            return None
        return opt.bound_stats()
