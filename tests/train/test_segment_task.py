"""``--task segment`` through the engine: metrics, PNG, bit-for-bit resume, CLI errors (issue 13)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
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


def test_digit_mosaic_options_through_extras(tmp_path: Path) -> None:
    """``extras["digit_mosaic"]`` reaches the generator (benchmark settings) and survives the config's JSON
    round trip (a resume rebuilds the same set); unknown options are refused in one line."""
    mosaic = {"digits": [0, 1], "ink": 1.0, "align": 16, "n_val": 8}
    cfg = _cfg(tmp_path / "a", steps=2, eval_every=2, checkpoint_every=0, extras={"digit_mosaic": mosaic})
    tr = Trainer(cfg)
    assert tr.fit().status == "completed"
    assert tr.task.n_classes == 3 and len(tr.task.x_test) == 8
    assert tr.model.decoder.cls_emb.shape[1] == 3
    assert set(torch.unique(tr.task.y_train).tolist()) <= {0, 1, 2, 255}
    back = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back.extras == cfg.extras
    bad = _cfg(tmp_path / "b", steps=2, extras={"digit_mosaic": {"glyphs": 3}})
    with pytest.raises(ValueError, match="unknown digit_mosaic option 'glyphs'"):
        Trainer(bad).fit()


def test_cli_bad_decoder_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from structlearn.cli import main

    assert main(["train", "--task", "segment", "--decoder", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "decoder" in err[0]


def _user_folder(root: Path, n: int = 12, rgb_mask: bool = False) -> Path:
    """A folder of RGB PNG images with PNG class-id masks (3 classes: left / right half / ignore)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        mask = np.zeros((16, 16), np.uint8)
        mask[:, 8:] = 1 + (i % 2)
        mask[0] = 255
        img = (rng.random((16, 16, 3)) * 60 + 80 * mask[..., None].clip(0, 2)).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / f"{i:03d}.png")
        m = Image.fromarray(mask)
        (m.convert("RGB") if rgb_mask and i == n - 1 else m).save(root / "masks" / f"{i:03d}.png")
    return root


def test_cli_trains_on_a_user_folder(tmp_path: Path) -> None:
    from structlearn.cli import main

    data = _user_folder(tmp_path / "data")
    out = tmp_path / "out"
    args = ["train", "--task", "segment", "--dataset", str(data), "--steps", "4", "--batch-size", "4"]
    args += ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--eval-every", "2", "--out-dir", str(out)]
    assert main([*args, "--no-progress", "--threads", "1"]) == 0
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("test_mIoU" in r for r in recs)
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["dataset"] == str(data) and cfg["patch_size"] == 4


@pytest.mark.parametrize("case", ["no_folder", "rgb_mask"])
def test_cli_user_folder_errors_exit_2(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    from structlearn.cli import main

    data = tmp_path / "nothing" if case == "no_folder" else _user_folder(tmp_path / "d", rgb_mask=True)
    out = tmp_path / "out"
    argv = ["train", "--task", "segment", "--dataset", str(data), "--steps", "2", "--batch-size", "4"]
    argv += ["--out-dir", str(out)]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and (
        "images/ and masks/" in err[0] if case == "no_folder" else "single-channel" in err[0]
    )
    assert not (out / "checkpoint.safetensors").exists()
