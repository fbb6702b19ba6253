from pathlib import Path
from typing import Any

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


def _market(root: Path, train_ids: int = 5, size: tuple[int, int] = (24, 12)) -> Path:
    """A tiny Market-1501-style folder: one colour per identity, query in camera 1, gallery in 2 and 3."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    splits = {
        "bounding_box_train": [(p, c) for p in range(1, train_ids + 1) for c in (1, 2, 1)],
        "query": [(p, 1) for p in (101, 102, 103)],
        "bounding_box_test": [(p, c) for p in (101, 102, 103) for c in (2, 3)],
    }
    for sub, items in splits.items():
        (root / sub).mkdir(parents=True)
        for j, (pid, cam) in enumerate(items):
            pixels = np.clip(rng.integers(0, 255, 3) + rng.normal(0, 20, (*size, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / sub / f"{pid:04d}_c{cam}s1_{j:06d}_00.jpg")
    return root


@pytest.mark.parametrize(
    "argv",
    [["reid", "train", "--method", "foo", "--out", "r"], ["reid", "train"], ["reid", "eval"]],
)
def test_reid_subcommand_parse_errors_are_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1  # not the usage block
    assert err.startswith(f"structlearn reid {argv[1]}: error:")


def test_reid_flag_errors_name_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _market(tmp_path / "data")
    for flags, named in (
        (["--data", str(data), "--size", "-4", "8"], "--size"),
        (["--data", str(data), "--size", "0", "0"], "--size"),
        (["--data-seed", "-1"], "--data-seed"),
    ):
        assert main(["reid", "train", *flags, "--quiet", "--out", str(tmp_path / "r")]) == 2
        assert named in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """``train_reid`` replaced by a failure that records the call: refusals must come before it."""
    import structlearn.cli.reid as cli_reid

    called: list[bool] = []

    def fail(*args: object, **kwargs: object) -> None:
        called.append(True)
        raise ValueError("training failed")

    monkeypatch.setattr(cli_reid, "train_reid", fail)
    return called


def test_reid_train_checks_every_output_path_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training: list[bool]
) -> None:
    (tmp_path / "r6" / "ranklists.png").mkdir(parents=True)
    assert main(["reid", "train", "--quiet", "--out", str(tmp_path / "r6")]) == 2
    err = capsys.readouterr().err
    assert "r6/ranklists.png is a directory" in err and ".tmp" not in err and not no_training


def test_reid_train_refuses_unusable_data_before_training_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training: list[bool]
) -> None:
    base = ["reid", "train", "--quiet", "--out", str(tmp_path / "r")]
    assert main([*base, "--data", str(_market(tmp_path / "data")), "--method", "sicl"]) == 2
    assert "--method sicl needs --masks" in capsys.readouterr().err
    one = _market(tmp_path / "one", train_ids=1)
    for extra in sorted((one / "bounding_box_train").iterdir())[1:]:
        extra.unlink()
    assert main([*base, "--data", str(one)]) == 2
    assert "bounding_box_train has 1 usable image" in capsys.readouterr().err
    assert not no_training and not (tmp_path / "r").exists()


def test_reid_failed_training_leaves_no_out_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training: list[bool]
) -> None:
    assert main(["reid", "train", "--quiet", "--out", str(tmp_path / "new" / "run")]) == 2
    assert "training failed" in capsys.readouterr().err and no_training
    assert not (tmp_path / "new").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data folder, run folder) of a model trained on 16 × 8 folder images."""
    tmp = tmp_path_factory.mktemp("trained")
    data, out = _market(tmp / "data"), tmp / "run"
    train = ["reid", "train", "--data", str(data), "--size", "16", "8", "--epochs", "1", "--iters", "1"]
    assert main([*train, "--quiet", "--out", str(out)]) == 0
    return data, out


@pytest.fixture
def eval_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The (H, W) of the query images each evaluation saw."""
    import structlearn.cli.reid as cli_reid

    sizes: list[tuple[int, ...]] = []
    real = cli_reid.evaluate_model

    def spy(net: Any, query: Any, gallery: Any) -> dict[str, float]:
        sizes.append(tuple(query.images.shape[2:]))
        return real(net, query, gallery)

    monkeypatch.setattr(cli_reid, "evaluate_model", spy)
    return sizes


def test_reid_eval_accepts_the_run_folder(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = trained
    assert main(["reid", "eval", str(out), "--data", str(data)]) == 0
    assert '"mAP"' in capsys.readouterr().out
    assert main(["reid", "eval", str(data), "--data", str(data)]) == 2  # a folder without a model
    assert "folder without model.safetensors" in capsys.readouterr().err


def test_reid_eval_reads_only_query_and_gallery(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    import shutil

    data, out = trained
    evalonly = tmp_path / "evalonly"
    for sub in ("query", "bounding_box_test"):
        shutil.copytree(data / sub, evalonly / sub)
    model = str(out / "model.safetensors")
    assert main(["reid", "eval", model, "--data", str(evalonly)]) == 0  # no bounding_box_train/
    (evalonly / "bounding_box_train").mkdir()
    (evalonly / "bounding_box_train" / "0001_c1s1_000001_00.jpg").write_bytes(b"not a jpeg")
    assert main(["reid", "eval", model, "--data", str(evalonly)]) == 0  # never decoded


def test_reid_eval_defaults_to_the_training_size_and_warns_on_another(
    tmp_path: Path,
    trained: tuple[Path, Path],
    eval_sizes: list[tuple[int, ...]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from structlearn.train.checkpoint import load_checkpoint, save_checkpoint

    data, out = trained
    capsys.readouterr()
    assert main(["reid", "eval", str(out), "--data", str(data)]) == 0
    assert eval_sizes == [(16, 8)] and "warning" not in capsys.readouterr().err
    # An explicit other size is honoured, with a one-line warning.
    assert main(["reid", "eval", str(out), "--data", str(data), "--size", "32", "16"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert eval_sizes[-1] == (32, 16) and len(warned) == 1 and "trained on 16×8" in warned[0]
    # A model written before the size was recorded loads with the old default (64 × 32), no warning.
    ckpt = load_checkpoint(out / "model.safetensors")
    del ckpt["config"]["input_size"]
    save_checkpoint(tmp_path / "old.safetensors", dict(ckpt))
    assert main(["reid", "eval", str(tmp_path / "old.safetensors"), "--data", str(data)]) == 0
    assert eval_sizes[-1] == (64, 32) and "warning" not in capsys.readouterr().err
