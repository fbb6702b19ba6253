from pathlib import Path

import pytest
import torch

from structlearn.train.config import TrainConfig
from structlearn.train.distributed import DistContext
from structlearn.train.tasks import ImageTask, LMTask


def test_lm_ranks_take_slices_of_the_single_process_batch(corpus: Path) -> None:
    base = TrainConfig(corpus=str(corpus), block_size=8, batch_size=3, out_dir=None)
    single = LMTask(base.replace(batch_size=6), DistContext())
    ranks = [LMTask(base, DistContext(rank=r, world_size=2)) for r in range(2)]
    for _ in range(3):
        x, y = single.next_batch()
        parts = [t.next_batch() for t in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(
            torch.cat([p[1] for p in parts]), y
        )
    assert ranks[0].items_per_step == 6 * 8


def test_lm_validation_batches_are_fixed_across_seeds(corpus: Path) -> None:
    a = LMTask(TrainConfig(corpus=str(corpus), block_size=8, eval_batches=3, seed=0), DistContext())
    b = LMTask(TrainConfig(corpus=str(corpus), block_size=8, eval_batches=3, seed=5), DistContext())
    assert a.val_x.shape == (3, 32, 8) and torch.equal(a.val_x, b.val_x) and torch.equal(a.val_y, b.val_y)
    assert not torch.equal(a.next_batch()[0], b.next_batch()[0])  # training batches follow the seed


def test_lm_context_longer_than_the_data(corpus: Path) -> None:
    with pytest.raises(ValueError, match="context 5000 is >= the val split"):
        LMTask(TrainConfig(corpus=str(corpus), block_size=5000), DistContext())


def test_image_epochs_cover_the_data_and_resume_exactly() -> None:
    cfg = TrainConfig(task="image", batch_size=100, train_subset=450, augment_shift=0)
    t = ImageTask(cfg, DistContext())
    assert t.model_info == {"image_size": (8, 8), "in_channels": 1, "n_classes": 10}
    seen = torch.cat([t.next_batch()[1] for _ in range(4)])  # one epoch of 4 full batches (tail dropped)
    assert len(seen) == 400 and t.epoch == 1
    state = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in t.state_dict().items()}
    after = [t.next_batch() for _ in range(3)]  # crosses into epoch 2
    u = ImageTask(cfg, DistContext())
    u.load_state_dict(state)
    for xa, ya in after:
        xb, yb = u.next_batch()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert u.epoch == 2


def test_image_subset_and_label_noise_do_not_depend_on_the_seed() -> None:
    a = ImageTask(TrainConfig(task="image", train_subset=300, label_noise=0.5, seed=0), DistContext())
    b = ImageTask(TrainConfig(task="image", train_subset=300, label_noise=0.5, seed=9), DistContext())
    clean = ImageTask(TrainConfig(task="image", train_subset=300, seed=0), DistContext())
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    changed = (a.y_train != clean.y_train).float().mean()
    assert 0.3 < changed < 0.6  # about half replaced, 1/10 of those by the same class


def test_image_ranks_and_batch_larger_than_data() -> None:
    cfg = TrainConfig(task="image", batch_size=8, train_subset=64)
    single = ImageTask(cfg.replace(batch_size=16), DistContext())
    ranks = [ImageTask(cfg, DistContext(rank=r, world_size=2)) for r in range(2)]
    x, y = single.next_batch()
    parts = [t.next_batch() for t in ranks]
    assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(
        torch.cat([p[1] for p in parts]), y
    )
    with pytest.raises(ValueError, match=r"batch size 128 .* exceeds the 64 training images"):
        ImageTask(cfg.replace(batch_size=64), DistContext(rank=0, world_size=2))
    with pytest.raises(ValueError, match="train_subset 5000 exceeds"):
        ImageTask(cfg.replace(train_subset=5000), DistContext())
