"""Tiny stand-in model/optimizer factories with the real API's signatures (engine tests only)."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from structlearn.train.components import Components
from structlearn.train.config import TrainConfig


class TinyLM(nn.Module):
    """Bigram-plus-position model: forward(idx, targets=None) -> (logits, loss) like GPT."""

    def __init__(self, vocab_size: int, block_size: int, width: int = 16) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, width)
        self.pos = nn.Embedding(block_size, width)
        self.mix = nn.Linear(width, width)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
        h = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        logits = self.head(torch.tanh(self.mix(h)))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss


class TinyClassifier(nn.Module):
    """Flatten → MLP: forward(x, targets=None) -> (logits, loss) like ViT."""

    def __init__(self, in_features: int, n_classes: int, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, width), nn.Tanh(), nn.Linear(width, n_classes)
        )

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
        logits = self.net(x)
        loss = None if targets is None else F.cross_entropy(logits.float(), targets)
        return logits, loss


def tiny_model(config: TrainConfig, info: dict[str, Any]) -> nn.Module:
    if config.task == "lm":
        return TinyLM(info["vocab_size"], config.block_size)
    h, w = info["image_size"]
    return TinyClassifier(info["in_channels"] * h * w, info["n_classes"])


def torch_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    lr, wd = config.resolved_lr, config.resolved_weight_decay
    if config.optimizer == "sgdw":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=wd)
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=config.betas, eps=config.eps, weight_decay=wd)


def _cosine(step: int, total: int, warmup: int, floor: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def cosine_scheduler(config: TrainConfig, opt: torch.optim.Optimizer) -> Any:
    fn = functools.partial(_cosine, total=config.steps, warmup=config.warmup_steps, floor=config.min_lr_frac)
    return torch.optim.lr_scheduler.LambdaLR(opt, fn)


def state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(
        t.numel() * t.element_size()
        for s in opt.state.values()
        for t in s.values()
        if isinstance(t, torch.Tensor)
    )


STANDINS = Components(
    model=tiny_model, optimizer=torch_optimizer, scheduler=cosine_scheduler, state_bytes=state_bytes
)
