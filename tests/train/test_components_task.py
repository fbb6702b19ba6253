"""Components.task (a caller's data behind the Task interface) and trainer.last_loss for hooks: what
benchmarks/bench_warmup.py trains through."""

from pathlib import Path
from typing import Any

import torch

from structlearn.train import Components, TrainConfig, Trainer
from structlearn.train.tasks import LMTask, make_task
from tests.train.conftest import TINY


class _CountingTask(LMTask):
    """The library's LM task with every batch it hands out remembered."""

    def __init__(self, config: TrainConfig, ctx: Any) -> None:
        super().__init__(config, ctx)
        self.served: list[torch.Tensor] = []

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = super().next_batch()
        self.served.append(x)
        return x, y


class _LossHook:
    def __init__(self) -> None:
        self.losses: list[float] = []

    def after_step(self, trainer: Any, step: int) -> None:
        self.losses.append(float(trainer.last_loss))


def _cfg(corpus: Path) -> TrainConfig:
    return TrainConfig(
        **TINY,
        corpus=str(corpus),
        block_size=8,
        batch_size=2,
        steps=5,
        eval_every=0,
        eval_batches=1,
        log_every=1,
        out_dir=None,
        progress=False,
    )


def test_components_task_is_the_task_trained_on(corpus: Path) -> None:
    assert Components().task is make_task
    made: list[_CountingTask] = []

    def factory(cfg: TrainConfig, ctx: Any) -> _CountingTask:
        made.append(_CountingTask(cfg, ctx))
        return made[-1]

    trainer = Trainer(_cfg(corpus), components=Components(task=factory))
    trainer.fit()
    assert len(made) == 1 and trainer.task is made[0] and len(made[0].served) == 5


def test_last_loss_is_each_steps_logged_loss(corpus: Path) -> None:
    hook = _LossHook()
    result = Trainer(_cfg(corpus), hooks=[hook]).fit()
    logged = [r["train_loss"] for r in result.history if "train_loss" in r]
    assert len(hook.losses) == 5 and hook.losses == logged  # log_every=1: one loss per record
