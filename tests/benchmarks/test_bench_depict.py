"""benchmarks/bench_depict.py: argument checks (the training itself is the engine's, tested elsewhere)."""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_depict.py"
_spec = importlib.util.spec_from_file_location("bench_depict", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_depict"] = bench
_spec.loader.exec_module(bench)


@pytest.mark.parametrize("flag", ["--steps", "--seeds", "--train", "--batch-size", "--n-layer"])
def test_bad_arguments_exit_2(flag: str, tmp_path: Path) -> None:
    assert bench.main([flag, "0", "--out", str(tmp_path)]) == 2


def test_mean_std_formatting() -> None:
    assert bench._ms([0.5, 0.7], 100) == "60.0 ± 14.1"
    assert bench._ms([3.0]) == "3.0 ± 0.0"


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--digits", "3,3"), ("--digits", "x"), ("--ink", "2"), ("--align", "0"), ("--sgdw-lrs", "0.1,-1"),
     ("--adamw-lrs", "nan"), ("--lr", "0")],
)  # fmt: skip
def test_bad_task_and_ladder_arguments_exit_2(flag: str, value: str, tmp_path: Path) -> None:
    assert bench.main([flag, value, "--out", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())  # refused before any run


def test_pca_segmentation_scores_separable_tokens_high_and_noise_low() -> None:
    """Tokens that encode their patch's class segment perfectly; tokens of pure noise do not."""
    import torch

    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(6, 8, 8, dtype=torch.int64)  # 4×4 patch grid of 2×2 pixels
    masks[:, :4, :4] = 1
    masks[:3, 4:, 4:] = 2
    masks[0, 0, 7] = 255  # an ignored pixel
    labels = masks[:, ::2, ::2].clone()
    labels[labels == 255] = 0
    centres = torch.randn(3, 16, generator=g) * 5
    good = centres[labels.reshape(6, 16)] + 0.01 * torch.randn(6, 16, 16, generator=g)
    res = bench.pca_segmentation(good, masks, 3, 2)
    assert res["mIoU"] == pytest.approx(1.0) and res["aAcc"] == pytest.approx(1.0)
    noise = bench.pca_segmentation(torch.randn(6, 16, 16, generator=g), masks, 3, 2)
    assert noise["mIoU"] < 0.8
