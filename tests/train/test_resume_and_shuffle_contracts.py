"""Contracts that injected bugs slipped past (issue 16, item 5): the global RNG state is restored on
resume, and image batches are reshuffled every epoch."""

import random
from pathlib import Path

import numpy as np
import torch

from structlearn.train.config import TrainConfig
from structlearn.train.engine import Trainer
from tests.train.conftest import TINY


def _cfg(corpus: Path, out: Path, **kw: object) -> TrainConfig:
    base = dict(
        **TINY,
        corpus=str(corpus),
        block_size=16,
        batch_size=8,
        steps=8,
        eval_every=4,
        eval_batches=2,
        log_every=4,
        out_dir=str(out),
        progress=False,
        checkpoint_every=4,
    )
    return TrainConfig(**{**base, **kw})


class DrawsFromGlobalRNG:
    """A hook that, like dropout or a user's augmentation, draws from the global generators each step."""

    def __init__(self) -> None:
        self.draws: dict[int, tuple[float, float, float]] = {}

    def after_step(self, trainer: Trainer, step: int) -> None:
        self.draws[step] = (
            float(torch.rand(1)),
            float(np.random.random_sample()),
            random.random(),
        )


def test_resume_continues_the_global_random_streams(corpus: Path, tmp_path: Path) -> None:
    """Steps 5–8 of a resumed run draw the same global random numbers as the uninterrupted run (the
    RNG states saved in the checkpoint are restored); without the restore they repeat steps 1–4's."""
    full = DrawsFromGlobalRNG()
    Trainer(_cfg(corpus, tmp_path / "full"), hooks=[full]).fit()
    cfg = _cfg(corpus, tmp_path / "part")
    Trainer(cfg, hooks=[DrawsFromGlobalRNG()]).fit(stop_after=4)
    resumed = DrawsFromGlobalRNG()
    Trainer(cfg, hooks=[resumed], resume=tmp_path / "part" / "checkpoint.safetensors").fit()
    assert sorted(resumed.draws) == [5, 6, 7, 8]
    assert all(resumed.draws[s] == full.draws[s] for s in (5, 6, 7, 8))


def test_image_batches_are_reshuffled_every_epoch(tmp_path: Path) -> None:
    # 200 training images, batch 50: four batches an epoch.
    cfg = TrainConfig(
        **TINY, task="image", batch_size=50, train_subset=200, steps=8, progress=False, out_dir=None
    )
    trainer = Trainer(cfg)
    trainer._setup()  # builds the data task without training
    task = trainer.task
    seen = [task.next_batch()[1] for _ in range(8)]
    epoch1, epoch2 = torch.cat(seen[:4]), torch.cat(seen[4:])
    # Same images each epoch (same label multiset), in a different order.
    assert torch.equal(epoch1.sort().values, epoch2.sort().values)
    assert not torch.equal(epoch1, epoch2)
    first = [tuple(b.tolist()) for b in seen[:4]]
    second = [tuple(b.tolist()) for b in seen[4:]]
    assert first != second
