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
    import json

    hist = json.loads((out / "history.json").read_text())
    assert len(hist["pseudo_labels"]) > 0 and hist["final_gray"] is None  # SpCL has no grayscale branch
    assert main(["reid", "eval", str(out / "model.safetensors")]) == 0
    assert '"mAP"' in capsys.readouterr().out
    # --cluster-on gray needs CACL's grayscale branch: refused with exit 2 before training.
    assert main([*args[:-1], str(tmp_path / "gray"), "--cluster-on", "gray"]) == 2
    assert "cluster_on" in capsys.readouterr().err
    # Cluster-Contrast has only a centroid memory: refused with exit 2, nothing written.
    ccm = [*args[:-1], str(tmp_path / "ccm"), "--method", "cluster-contrast", "--memory", "instance"]
    assert main(ccm) == 2 and "memory" in capsys.readouterr().err and not (tmp_path / "ccm").exists()
    assert main(args) == 2  # a folder that already holds a model is refused before training
    assert "already holds a model" in capsys.readouterr().err
    bad = tmp_path / "file"
    bad.write_text("x")
    assert main(["reid", "train", "--out", str(bad), "--quiet"]) == 2
    assert main(["reid", "eval", str(bad)]) == 2
    assert main(["reid", "train", "--data", str(tmp_path), "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "lacks the folder" in capsys.readouterr().err


def test_reid_masks_flag_loads_silhouettes_for_folder_data(tmp_path: Path) -> None:
    import argparse

    import numpy as np
    from PIL import Image

    from structlearn.cli.reid import load_data

    rng = np.random.default_rng(0)
    data, masks = tmp_path / "data", tmp_path / "masks"
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        (data / sub).mkdir(parents=True)
        for name in ("0001_c1s1_000001_01", "0002_c2s1_000002_01"):
            Image.fromarray(rng.integers(0, 255, (16, 8, 3), dtype=np.uint8)).save(data / sub / f"{name}.jpg")
            if sub == "bounding_box_train":  # masks for the training images only
                (masks / sub).mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((16, 8), 255, np.uint8)).save(masks / sub / f"{name}.png")
    ns = argparse.Namespace(data=str(data), size=(16, 8), masks=str(masks), shortcut=0.7, data_seed=0)
    ds = load_data(ns)
    assert ds.train.silhouettes is not None and ds.train.silhouettes.shape == (2, 1, 16, 8)
    assert ds.query.silhouettes is None and ds.gallery.silhouettes is None
    with pytest.raises(ValueError, match="lacks the folder bounding_box_train"):
        load_data(argparse.Namespace(**{**vars(ns), "masks": str(tmp_path)}))
    with pytest.raises(ValueError, match="--masks goes with --data"):
        load_data(argparse.Namespace(**{**vars(ns), "data": None}))


def test_reid_procedural_clothes_change_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    base = ["reid", "train", "--epochs", "1", "--iters", "2", "--method", "sicl", "--quiet"]
    out = tmp_path / "cc"
    assert main([*base, "--outfits", "3", "--pose-jitter", "0", "--out", str(out)]) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"mAP", "cc_mAP", "cc_R1"} <= set(final)  # the clothes-change protocol beside the standard one
    assert main(["reid", "eval", str(out / "model.safetensors"), "--outfits", "3", "--pose-jitter", "0"]) == 0
    assert "cc_mAP" in capsys.readouterr().out
    assert main([*base, "--outfits", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "outfits_per_id" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main([*base, "--pose-jitter", "-1", "--out", str(tmp_path / "bad2")]) == 2
    assert "pose_jitter" in capsys.readouterr().err
