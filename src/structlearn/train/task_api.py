"""The interface between the training loop and a task (``LMTask``, ``ImageTask``, ``SegmentTask``).

The loop (``train.engine``, ``train.step``) knows a task only through :class:`Task`: it never branches
on ``config.task``. Everything task-specific — the data, the batch stream, the evaluation metrics, the
throughput unit, the extra fields of a metrics record and the data summary line — lives behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import torch
from torch import nn

# The forward-pass context a task's evaluation runs its model under (bf16 autocast or a no-op).
AutocastFactory = Callable[[], AbstractContextManager[Any]]


class Task(Protocol):
    """What the training loop needs from a task.

    - ``unit``: what ``items_per_step`` counts (``tokens`` or ``images``), used in the throughput key
      ``<unit>_per_s``; ``metric``: the headline evaluation metric's key.
    - ``next_batch()`` → this process's (x, y) on the CPU for one optimizer step (all micro-batches).
    - ``evaluate(model, device, autocast)`` → metrics over data fixed for the run (collective under DDP).
    - ``log_fields()`` → task-specific fields of every metrics record (image: ``epoch``), read at
      logging steps only.
    - ``describe()`` → the one-line data summary printed before training.
    - ``state_dict()`` / ``load_state_dict()`` → everything needed to continue the batch stream exactly.
    """

    unit: str
    metric: str
    items_per_step: int

    @property
    def model_info(self) -> dict[str, Any]: ...

    @property
    def fingerprint(self) -> dict[str, Any]: ...

    @property
    def vocabulary(self) -> dict[str, Any] | None: ...

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def probe_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def evaluate(
        self, model: nn.Module, device: torch.device, autocast: AutocastFactory
    ) -> dict[str, float]: ...

    def log_fields(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
