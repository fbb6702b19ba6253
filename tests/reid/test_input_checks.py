import dataclasses

import numpy as np
import pytest
import torch

from structlearn.data.reid import ReIDSplit, make_reid_dataset
from structlearn.reid.backbone import ReIDNet
from structlearn.reid.trainer import ReIDConfig, train_reid


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(2, 1, 16, 8), r"shape \(N, 3, H, W\), got \(2, 1, 16, 8\)"),
        (torch.rand(3, 16, 8), r"shape \(N, 3, H, W\)"),
        (torch.rand(0, 3, 16, 8), "non-empty"),
        (torch.zeros(2, 3, 16, 8, dtype=torch.uint8), "dtype torch.float32 .* got torch.uint8"),
        (np.zeros((2, 3, 16, 8), np.float32), "torch.Tensor .* got ndarray"),
    ],
)
def test_embed_rejects_bad_images_with_one_line_value_error(images: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ReIDNet().embed(images)  # type: ignore[arg-type]


def test_embed_accepts_float_images() -> None:
    assert ReIDNet().embed(torch.rand(3, 3, 16, 8)).shape == (3, 64)


def test_train_reid_checks_its_data_before_training() -> None:
    data = make_reid_dataset(2, 1, 3, n_cameras=2, seed=0)
    t = data.train
    first = ReIDSplit(t.images[:1], t.pids[:1], t.cams[:1], t.clothes[:1])
    one = dataclasses.replace(data, train=first)
    with pytest.raises(ValueError, match=r"data\.train has 1 image"):
        train_reid(one, ReIDConfig(epochs=1, iters_per_epoch=1, progress=False))
    bare = dataclasses.replace(data, train=dataclasses.replace(data.train, silhouettes=None))
    with pytest.raises(ValueError, match="SiCL needs silhouettes"):
        train_reid(bare, ReIDConfig(method="sicl", epochs=1, iters_per_epoch=1, progress=False))
