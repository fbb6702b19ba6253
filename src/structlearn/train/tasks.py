"""The training tasks: next-token prediction on text, image classification and segmentation.

A task owns its data, its batch stream and its evaluation, so the training loop is task-agnostic:

- ``next_batch()`` → this process's (x, y) on the CPU. Under DDP every rank draws the same *global*
  batch from the same generator and keeps its own slice, so a run with P processes × B samples sees the
  batches of a single-process run with P·B samples, and the data state is identical on all ranks.
  With ``grad_accum`` N the batch holds all N micro-batches of the step (B·N samples per process);
  the loop splits it, so N micro-batches of B see exactly the data of one batch of N·B.
- ``evaluate(model, ...)`` → metrics over data fixed for the whole run (LM: ``eval_batches`` validation
  batches drawn once with ``data_seed``, so every run and arm sees the same batches, or with
  ``eval_full`` the whole validation split as consecutive windows; image: the full test split in
  batches). Ranks split the batches and all-reduce the sums; one host sync per call.
- ``state_dict()`` / ``load_state_dict()`` → everything needed to continue the batch stream exactly.

The interface itself is ``train.task_api.Task``; this module holds ``LMTask`` and ``make_task`` and
re-exports the image tasks (``train.image_tasks``) so ``from structlearn.train.tasks import ...`` keeps
working for all three.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from structlearn.data.text import TextData, load_text, sample_batch
from structlearn.train.config import TrainConfig
from structlearn.train.distributed import DistContext
from structlearn.train.image_tasks import ImageTask, SegmentTask
from structlearn.train.task_api import AutocastFactory, Task
from structlearn.utils.seed import torch_generator

__all__ = ["AutocastFactory", "ImageTask", "LMTask", "SegmentTask", "Task", "make_task"]


class LMTask:
    """Character/byte-level language modelling on a text corpus (``data.text``)."""

    unit = "tokens"
    metric = "val_loss"

    def __init__(self, config: TrainConfig, ctx: DistContext, data: TextData | None = None) -> None:
        self.config, self.ctx = config, ctx
        self.data = data or load_text(config.corpus, config.tokenizer, config.max_bytes)
        self.data.check_context(config.block_size)
        # One step's sequences for this process (all micro-batches of a gradient accumulation).
        self.batch_size = config.batch_size * config.grad_accum
        self.items_per_step = self.batch_size * ctx.world_size * config.block_size
        self.generator = torch_generator(config.seed)
        bv, T = config.resolved_eval_batch_size, config.block_size
        if config.eval_full:
            # The whole split as consecutive non-overlapping windows (every val token predicted once,
            # the last partial window dropped), in batches of bv; the last batch may be smaller.
            n_win = (len(self.data.val) - 1) // T
            starts = torch.arange(n_win) * T
            window = self.data.val[starts[:, None] + torch.arange(T + 1)].long()
            self.val_x, self.val_y = list(window[:, :-1].split(bv)), list(window[:, 1:].split(bv))
        else:
            # Fixed validation batches: one generator seeded with data_seed, drawn once.
            g_val = torch_generator(config.data_seed)
            n = config.eval_batches
            x, y = sample_batch(self.data.val, T, bv * n, g_val)
            self.val_x = x.view(n, bv, -1)
            self.val_y = y.view(n, bv, -1)

    @property
    def model_info(self) -> dict[str, Any]:
        return {"vocab_size": self.data.vocab_size}

    @property
    def fingerprint(self) -> dict[str, Any]:
        return self.data.fingerprint.to_dict()

    @property
    def vocabulary(self) -> dict[str, Any]:
        return self.data.tokenizer.state_dict()

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        b, r = self.batch_size, self.ctx.rank
        x, y = sample_batch(self.data.train, self.config.block_size, b * self.ctx.world_size, self.generator)
        return x[r * b : (r + 1) * b], y[r * b : (r + 1) * b]

    def probe_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.val_x[0], self.val_y[0]

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device, autocast: AutocastFactory) -> dict[str, float]:
        # Token-weighted mean over the batches (they differ in size only with eval_full).
        sums = torch.zeros(2, dtype=torch.float64, device=device)
        for i in range(self.ctx.rank, len(self.val_x), self.ctx.world_size):
            x, y = self.val_x[i].to(device), self.val_y[i].to(device)
            with autocast():
                _, loss = model(x, y)
            sums[0] += loss.double() * y.numel()
            sums[1] += y.numel()
        self.ctx.all_reduce(sums)
        return {"val_loss": float(sums[0] / sums[1])}

    def log_fields(self) -> dict[str, Any]:
        return {}

    def describe(self) -> str:
        fp = self.fingerprint
        return (
            f"data: {fp['source']}: {fp['files']} files, {fp['bytes']:,} bytes, "
            f"sha256 {fp['sha256'][:16]}…, "
            f"{self.config.tokenizer} vocabulary {self.data.vocab_size}"
        )

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def make_task(config: TrainConfig, ctx: DistContext) -> Task:
    if config.task == "segment":
        return SegmentTask(config, ctx)
    return LMTask(config, ctx) if config.task == "lm" else ImageTask(config, ctx)
