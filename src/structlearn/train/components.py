"""Where a run's task, model, optimizer and learning-rate schedule come from: the one place the engine
meets ``structlearn.models`` and ``structlearn.optim``.

``Components`` bundles five factories; the defaults build the config's task (``tasks.make_task``), the
library's GPT/ViT, ``param_groups`` + ``make_optimizer`` and the cosine ``lr_multiplier`` schedule.
Tests and benchmarks may pass their own (e.g. a tiny stand-in model, or a benchmark's own data behind
``task_api.Task``) without touching the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from structlearn.train.config import TrainConfig
from structlearn.train.distributed import DistContext
from structlearn.train.task_api import Task
from structlearn.train.tasks import make_task


def build_model(config: TrainConfig, info: dict[str, Any]) -> nn.Module:
    """GPT for ``lm`` (``info["vocab_size"]``), ViT for ``image`` (image size, channels, classes)."""
    from structlearn.models import GPT, GPTConfig, ViT, ViTConfig

    if config.task == "lm":
        return GPT(
            GPTConfig(
                vocab_size=info["vocab_size"],
                block_size=config.block_size,
                n_layer=config.n_layer,
                n_head=config.n_head,
                n_embd=config.n_embd,
                norm=config.norm,
                norm_type=config.norm_type,
                dropout=config.dropout,
            )
        )
    vit = ViTConfig(
        image_size=info["image_size"],
        patch_size=config.resolved_patch_size,
        in_channels=info["in_channels"],
        n_classes=info["n_classes"],
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_embd=config.n_embd,
        norm=config.norm,
        norm_type=config.norm_type,
        dropout=config.dropout,
    )
    if config.task == "segment":  # ViT encoder + segmentation decoder (issue 13)
        from structlearn.models.segmentation import SegConfig, SegModel

        return SegModel(vit, SegConfig(n_classes=info["n_classes"], decoder=config.decoder))
    return ViT(vit)


def build_optimizer(config: TrainConfig, model: nn.Module, /, **extra: Any) -> torch.optim.Optimizer:
    """``make_optimizer`` over the documented weight-decay groups, plus extension keywords (``extra``:
    more optimizer keywords, e.g. ``model=`` for a bounded optimizer)."""
    from structlearn.optim.factory import make_optimizer
    from structlearn.optim.param_groups import param_groups

    wd = config.resolved_weight_decay
    return make_optimizer(
        config.optimizer,
        param_groups(
            model,
            wd,
            lr=config.resolved_lr,
            embedding_lr_scale=config.embedding_lr_scale,
            gain_lr_scale=config.gain_lr_scale,
        ),
        lr=config.resolved_lr,
        weight_decay=wd,
        momentum=config.momentum,
        betas=config.betas,
        eps=config.eps,
        **({"nesterov": True} if config.nesterov else {}),  # only the SGDW family takes it (config checks)
        **config.optimizer_kwargs,
        **extra,
    )


def build_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step cosine decay to ``min_lr_frac`` with optional linear warmup (``optim.schedules``)."""
    from structlearn.optim.schedules import make_scheduler

    return make_scheduler(optimizer, config.steps, config.warmup_steps, config.min_lr_frac)


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    from structlearn.optim.factory import optimizer_state_bytes

    return int(optimizer_state_bytes(optimizer))


@dataclass(frozen=True)
class Components:
    model: Callable[[TrainConfig, dict[str, Any]], nn.Module] = build_model
    optimizer: Callable[[TrainConfig, nn.Module], torch.optim.Optimizer] = build_optimizer
    scheduler: Callable[[TrainConfig, torch.optim.Optimizer], Any] = build_scheduler
    state_bytes: Callable[[torch.optim.Optimizer], int] = state_bytes
    task: Callable[[TrainConfig, DistContext], Task] = make_task
