"""``--task segment`` through the engine: metrics, PNG, bit-for-bit resume, CLI errors (issue 13)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from structlearn.train import TrainConfig
from structlearn.train.engine import Trainer


def _cfg(out: Path, **kw: object) -> TrainConfig:
    base = dict(
        task="segment", decoder="depict-ca", train_subset=48, batch_size=16, steps=6, n_layer=1, n_head=2,
        n_embd=32, eval_every=3, log_every=3, checkpoint_every=3, progress=False, out_dir=str(out), threads=1,
        optimizer="sgdw", lr=0.05,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_segment_run_metrics_png_and_resume(tmp_path: Path) -> None:
    torch.manual_seed(0)
    full = Trainer(_cfg(tmp_path / "full"))
    res = full.fit()
    assert res.status == "completed"
    last = res.history[-1]
    assert (
        0.0 <= last["test_mIoU"] <= 1.0
        and 0.0 <= last["test_acc"] <= 1.0
        and math.isfinite(last["test_loss"])
    )
    assert (tmp_path / "full" / "segmentation.png").stat().st_size > 0
    recs = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert any("test_mIoU" in r for r in recs)
    part = _cfg(tmp_path / "part")
    assert Trainer(part).fit(stop_after=3).status == "stopped"
    resumed = Trainer(part, resume=tmp_path / "part" / "checkpoint.safetensors")
    assert resumed.fit().status == "completed"
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_config_checks() -> None:
    assert TrainConfig(task="segment").dataset == "digit_mosaic"
    assert TrainConfig(task="segment").resolved_patch_size == 4
    with pytest.raises(ValueError, match="decoder"):
        TrainConfig(task="segment", decoder="mask2former")
    with pytest.raises(ValueError, match="digit_mosaic only with segment"):
        TrainConfig(task="image", dataset="digit_mosaic")
    with pytest.raises(ValueError, match="task segment goes with"):
        TrainConfig(task="segment", dataset="fashion_mnist")


def test_cli_bad_decoder_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from structlearn.cli import main

    assert main(["train", "--task", "segment", "--decoder", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "decoder" in err[0]
