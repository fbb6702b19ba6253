from pathlib import Path

import numpy as np
import pytest

from structlearn.cli import main
from structlearn.data.sequences import MotionSequenceConfig, make_motion_sequence

CFG = MotionSequenceConfig(
    n_frames=120, n_motions=2, n_segments=4, ambient_dim=12, min_segment=20, shared=0.3
)


@pytest.fixture
def video(tmp_path: Path) -> tuple[Path, np.ndarray]:
    seq = make_motion_sequence(CFG, seed=0)
    np.save(tmp_path / "video.npy", seq.X)
    np.save(tmp_path / "video.labels.npy", seq.y)
    return tmp_path / "video.npy", seq.y


def test_segment_tsc_writes_labels_and_figure(
    video: tuple[Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, y = video
    out, fig = tmp_path / "pred.npy", tmp_path / "seg.png"
    args = [str(path), "--n-clusters", "2", "--method", "tsc", "--out", str(out), "--plot", str(fig)]
    assert main(["segment", *args, "--min-segment", "5"]) == 0
    text = capsys.readouterr().out
    assert "ACC" in text and "after --min-segment 5" in text and "segments predicted" in text
    pred = np.load(out)
    assert pred.shape == y.shape and fig.read_bytes()[:4] == b"\x89PNG"


def test_segment_sequence_alias_runs_tr2c(
    video: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = video
    assert main(["segment-sequence", str(path), "-k", "2", "--iters", "10", "--seed", "1"]) == 0
    assert "TR2C (window 2)" in capsys.readouterr().out


def _fails(args: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    assert main(["segment", *args]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_bad_inputs_exit_2_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, fig = tmp_path / "pred.npy", tmp_path / "seg.png"
    outputs = ["--out", str(out), "--plot", str(fig), "--method", "tsc"]
    X = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    np.save(tmp_path / "short.npy", X)
    _fails(
        [str(tmp_path / "short.npy"), "-k", "2", "--window", "6", *outputs],
        capsys,
        "not more than the window 6",
    )
    _fails([str(tmp_path / "short.npy"), "-k", "7", *outputs], capsys, "fewer than --n-clusters 7")
    X_nan = X.copy()
    X_nan[3] = np.nan
    np.save(tmp_path / "nan.npy", X_nan)
    _fails([str(tmp_path / "nan.npy"), "-k", "2", *outputs], capsys, "frames with NaN")
    np.save(tmp_path / "wrong.npy", np.zeros(5, dtype=np.int64))
    args = [str(tmp_path / "short.npy"), "-k", "2", "--labels", str(tmp_path / "wrong.npy"), *outputs]
    _fails(args, capsys, "has length 5 but there are 6 samples")
    _fails([str(tmp_path / "missing.npy"), "-k", "2", *outputs], capsys, "no such feature file")
    _fails(
        [str(tmp_path / "short.npy"), "-k", "2", "--out", str(tmp_path / "x.txt")],
        capsys,
        "--out must name a .npy",
    )
    _fails(
        [str(tmp_path / "short.npy"), "-k", "2", "--min-segment", "-1"], capsys, "--min-segment must be >= 0"
    )
    assert not out.exists() and not fig.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_outputs_are_checked_before_the_fit(
    video: tuple[Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An output that would overwrite an input, or cannot be written, fails before any work."""
    path, y = video
    before = path.read_bytes()
    _fails([str(path), "-k", "2", "--method", "tsc", "--out", str(path)], capsys, "is an input file")
    labels = tmp_path / "video.labels.npy"  # picked up from beside the sequence
    _fails([str(path), "-k", "2", "--method", "tsc", "--out", str(labels)], capsys, "is an input file")
    assert path.read_bytes() == before and np.array_equal(np.load(labels), y)
    (tmp_path / "dir.png").mkdir()
    main(["segment", str(path), "-k", "2", "--method", "tsc", "--plot", str(tmp_path / "dir.png")])
    err = capsys.readouterr()
    assert "is a directory" in err.err and "segments predicted" not in err.out  # refused before the fit
