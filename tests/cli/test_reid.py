from pathlib import Path

import pytest

from structlearn.cli import main


def test_reid_train_then_eval_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = [
        "reid",
        "train",
        "--epochs",
        "1",
        "--iters",
        "3",
        "--method",
        "spcl",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert {p.name for p in out.iterdir()} >= {
        "model.safetensors",
        "history.json",
        "progress.png",
        "ranklists.png",
    }
    assert main(["reid", "eval", str(out / "model.safetensors")]) == 0
    assert '"mAP"' in capsys.readouterr().out
    assert main(args) == 2  # a folder that already holds a model is refused before training
    assert "already holds a model" in capsys.readouterr().err
    bad = tmp_path / "file"
    bad.write_text("x")
    assert main(["reid", "train", "--out", str(bad), "--quiet"]) == 2
    assert main(["reid", "eval", str(bad)]) == 2
    assert main(["reid", "train", "--data", str(tmp_path), "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "lacks the folder" in capsys.readouterr().err
