"""Fault injection at the CLI/engine boundary (issue 11): read-only and full file systems, output paths
of the wrong kind, two runs on one folder, ``kill -9`` during a checkpoint write, SIGTERM/SIGINT.

Mount-based faults need root and ``mount`` (tests run as root, which ignores permission bits, so a
``chmod`` would not make a folder read-only); they are skipped cleanly where mounting is not permitted.
Models are tiny (one layer, 16 wide) and runs a few steps, so each test takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import structlearn
from structlearn.cli import main
from structlearn.train.checkpoint import load_checkpoint, save_checkpoint

SRC = str(Path(structlearn.__file__).resolve().parents[1])


# ------------------------------------------------------------------------------------------- helpers
@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("def f(x):\n    return x + 1\n" * 300)
    return path


@pytest.fixture
def blobs(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "blobs.npy"
    np.save(path, np.concatenate([rng.normal(c, 0.1, (15, 3)) for c in (0.0, 5.0)]))
    return path


@pytest.fixture
def sequence(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "seq.npy"
    np.save(path, np.concatenate([rng.normal(c, 0.1, (12, 4)) for c in (0.0, 3.0)]))
    return path


def lm_args(corpus: Path, out: Path, *extra: str, steps: int = 6) -> list[str]:
    return [
        "train",
        "--n-layer",
        "1",
        "--n-head",
        "2",
        "--n-embd",
        "16",
        "--corpus",
        str(corpus),
        "--block-size",
        "16",
        "--batch-size",
        "4",
        "--steps",
        str(steps),
        "--eval-every",
        "3",
        "--eval-batches",
        "2",
        "--log-every",
        "2",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


def _spawn(args: list[str], prelude: str = "") -> subprocess.Popen[str]:
    """``structlearn ARGS`` in a fresh process (``prelude``: Python run first, e.g. a monkeypatch)."""
    code = f"import sys\n{prelude}\nfrom structlearn.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not (path.is_file() and path.stat().st_size > 0):
        if proc.poll() is not None:
            pytest.fail(f"process ended early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"structlearn {command}: error: "), err
    assert "Traceback" not in err and ".tmp" not in err
    return lines[0]


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp*"))


def _mount_tmpfs(target: Path, size: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    target.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on a read-only tmpfs (root ignores permission bits, so a chmod would not do)."""
    target = tmp_path / "ro"
    _mount_tmpfs(target, "1m")
    try:
        res = subprocess.run(["mount", "-o", "remount,ro", str(target)], capture_output=True)
        if res.returncode != 0:
            pytest.skip(f"cannot remount read-only: {res.stderr.decode().strip()}")
        yield target
    finally:
        _umount(target)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs, to be filled by the test."""
    target = tmp_path / "small"
    _mount_tmpfs(target, "512k")
    try:
        yield target
    finally:
        _umount(target)


def _fill(folder: Path, leave: int) -> None:
    """Fill ``folder``'s file system, then free ``leave`` bytes again."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:  # unbuffered: close() has nothing left to flush
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))


# ------------------------------------------------------------------------------------ read-only output
def test_read_only_output_is_one_line_exit_2(
    read_only_dir: Path, corpus: Path, blobs: Path, sequence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = read_only_dir / "run"
    assert main(lm_args(corpus, out)) == 2
    line = _one_error_line(capsys.readouterr().err, "train")
    assert str(out) in line and "Read-only file system" in line
    assert (
        main(["cluster", str(blobs), "--n-clusters", "2", "--quiet", "--out", str(read_only_dir / "y.npy")])
        == 2
    )
    assert "Read-only file system" in _one_error_line(capsys.readouterr().err, "cluster")
    assert (
        main(["segment", str(sequence), "-k", "2", "--iters", "2", "--plot", str(read_only_dir / "s.png")])
        == 2
    )
    assert "Read-only file system" in _one_error_line(capsys.readouterr().err, "segment")
    assert main(["demo", "--quick", "--task", "image", "--jobs", "1", "--out", str(read_only_dir / "d")]) == 2
    err = capsys.readouterr().err
    assert "Read-only file system" in _one_error_line(err, "demo")  # before training any arm
    assert list(read_only_dir.iterdir()) == []


# ------------------------------------------------------------------ output paths of the wrong kind
def test_output_path_that_is_a_file_or_under_a_file(
    tmp_path: Path, corpus: Path, blobs: Path, sequence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    # train: --out is an existing file / its parent is a file (was a FileExistsError traceback)
    for out in (afile, afile / "run"):
        assert main(lm_args(corpus, out)) == 2
        assert str(afile) in _one_error_line(capsys.readouterr().err, "train")
    # cluster: labels are not written when --metrics-out is unwritable (was: x.npy left behind)
    labels = tmp_path / "x.npy"
    args = ["cluster", str(blobs), "--n-clusters", "2", "--quiet", "--out", str(labels)]
    assert main([*args, "--metrics-out", str(afile / "m.json")]) == 2
    _one_error_line(capsys.readouterr().err, "cluster")
    assert not labels.exists()
    # segment: labels are not written when --plot is unwritable (was: labels written, then a traceback)
    seg = ["segment", str(sequence), "-k", "2", "--iters", "2", "--out", str(labels)]
    assert main([*seg, "--plot", str(afile / "s.png")]) == 2
    _one_error_line(capsys.readouterr().err, "segment")
    assert not labels.exists()
    # demo: refused before any arm is trained (was: every arm trained, then a traceback)
    assert (
        main(["demo", "--quick", "--task", "image", "--jobs", "1", "--no-progress", "--out", str(afile)]) == 2
    )
    err = capsys.readouterr().err
    _one_error_line(err, "demo")
    assert afile.read_text() == "x" and _temps(tmp_path) == []


def test_outputs_of_one_command_are_published_together(tmp_path: Path) -> None:
    from structlearn.utils.io import publish_together, save_npy, write_json

    with pytest.raises(RuntimeError), publish_together():
        save_npy(tmp_path / "a.npy", np.arange(3))
        write_json(tmp_path / "b.json", {"x": 1})
        assert not (tmp_path / "a.npy").exists()  # staged, not yet published
        raise RuntimeError("a later output failed")
    assert list(tmp_path.iterdir()) == []
    with publish_together():
        save_npy(tmp_path / "a.npy", np.arange(3))
        write_json(tmp_path / "b.json", {"x": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b.json"]


# ------------------------------------------------------------------------------------------ full disk
def test_full_disk_during_checkpoint_keeps_previous_checkpoint(
    small_fs: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = small_fs / "run"
    assert main(lm_args(corpus, out, "--stop-after", "2")) == 0
    ckpt = out / "checkpoint.safetensors"
    before = ckpt.read_bytes()
    capsys.readouterr()
    _fill(small_fs, leave=40_000)  # room for config/metrics, not for a ~77 kB checkpoint
    assert main(["train", "--resume", str(ckpt), "--stop-after", "4", "--no-progress"]) == 2
    line = _one_error_line(capsys.readouterr().err, "train")
    assert str(ckpt) in line and "No space left on device" in line
    assert ckpt.read_bytes() == before and load_checkpoint(ckpt)["step"] == 2
    assert _temps(out) == []


def test_full_disk_in_save_checkpoint_names_the_destination(small_fs: Path) -> None:
    path = save_checkpoint(small_fs / "c.safetensors", {"step": 1, "w": torch.ones(4)})
    _fill(small_fs, leave=0)
    with pytest.raises(OSError, match=r"c\.safetensors: No space left on device"):  # was SafetensorError
        save_checkpoint(path, {"step": 2, "w": torch.ones(50_000)})
    assert load_checkpoint(path)["step"] == 1
    assert _temps(small_fs) == []


def test_full_disk_is_refused_before_any_work(
    small_fs: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(small_fs, leave=0)
    assert main(lm_args(corpus, small_fs / "run")) == 2
    assert "No space left on device" in _one_error_line(capsys.readouterr().err, "train")
    demo = [
        "demo",
        "--quick",
        "--task",
        "image",
        "--jobs",
        "1",
        "--no-progress",
        "--out",
        str(small_fs / "d"),
    ]
    assert main(demo) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in _one_error_line(err, "demo")  # was: all arms trained first
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler"]  # was: empty run/ and d/ left


def test_failed_run_removes_the_folder_it_created(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import structlearn.train.engine as engine

    def no_space(path: object, obj: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine, "write_json", no_space)  # config.json is the first file a run writes
    assert main(lm_args(corpus, tmp_path / "new" / "run")) == 2
    _one_error_line(capsys.readouterr().err, "train")
    assert not (tmp_path / "new").exists()  # no empty folder or lock file left behind
    kept = tmp_path / "kept"
    kept.mkdir()
    assert main(lm_args(corpus, kept)) == 2
    assert kept.is_dir()  # a folder the user made stays


# --------------------------------------------------------------------------- two runs on one folder
def test_second_run_on_a_busy_folder_is_refused(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    first = _spawn(lm_args(corpus, out, "--log-every", "1", steps=100_000))
    try:
        _wait_for(out / "metrics.jsonl", first)
        config_before = (out / "config.json").read_bytes()
        assert main(lm_args(corpus, out, "--seed", "1")) == 2
        line = _one_error_line(capsys.readouterr().err, "train")
        assert "in use by another structlearn run" in line
        assert (out / "config.json").read_bytes() == config_before  # the first run's files untouched
        assert first.poll() is None  # and the first run goes on
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    # once the first run has ended, the folder is free again
    assert main(lm_args(corpus, out, "--steps", "2")) == 0


# --------------------------------------------------------------------- kill -9 during a checkpoint write
KILL_IN_SECOND_CHECKPOINT = """
import os, signal
import structlearn.train.checkpoint as ck
_real, _calls = ck.save_file, []
def _save(tensors, path, metadata=None):
    _calls.append(path)
    if len(_calls) == 2:  # half-written temp file, then killed as by kill -9
        with open(path, "wb") as fh:
            fh.write(b"partial")
        os.kill(os.getpid(), signal.SIGKILL)
    _real(tensors, path, metadata=metadata)
ck.save_file = _save
"""


def test_kill_during_checkpoint_write_then_resume_cleans_temp(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "run"
    proc = _spawn(lm_args(corpus, out, "--checkpoint-every", "2"), prelude=KILL_IN_SECOND_CHECKPOINT)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    ckpt = out / "checkpoint.safetensors"
    assert load_checkpoint(ckpt)["step"] == 2  # the previous checkpoint is intact
    assert len(_temps(out)) == 1  # what a kill leaves
    assert main(["train", "--resume", str(ckpt), "--no-progress"]) == 0
    assert _temps(out) == []
    assert json.loads((out / "result.json").read_text())["status"] == "completed"


# ----------------------------------------------------------------------------------- SIGTERM / SIGINT
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_checkpoint_and_status(tmp_path: Path, corpus: Path, sig: int, code: int) -> None:
    out = tmp_path / "run"
    proc = _spawn(lm_args(corpus, out, "--log-every", "1", "--checkpoint-every", "0", steps=100_000))
    _wait_for(out / "metrics.jsonl", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "interrupted"
    step = load_checkpoint(out / "checkpoint.safetensors")["step"]
    assert step == result["step"] == result["checkpoint_step"] >= 1
    assert f"checkpoint of step {step} saved" in err and signal.Signals(sig).name in err
    assert _temps(out) == []
    ckpt = str(out / "checkpoint.safetensors")
    assert main(["train", "--resume", ckpt, "--stop-after", str(step + 1), "--no-progress"]) == 0


# ------------------------------------------------------------------------------ smaller boundary items
def test_stop_after_not_beyond_checkpoint_is_refused(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(lm_args(corpus, out, "--stop-after", "4")) == 0
    capsys.readouterr()
    stamp = {p.name: p.read_bytes() for p in out.iterdir()}
    for n in ("2", "4"):  # was: exit 0 having done nothing (and config.json rewritten)
        assert main(["train", "--resume", str(out / "checkpoint.safetensors"), "--stop-after", n]) == 2
        line = _one_error_line(capsys.readouterr().err, "train")
        assert "checkpoint's step 4" in line and "nothing to train" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == stamp


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_checkpoint_mode_follows_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "c.safetensors", {"step": 1, "w": torch.ones(2)})
        other = tmp_path / "other"
        other.write_text("x")
    finally:
        os.umask(old)
    mode = path.stat().st_mode & 0o777
    assert mode == 0o666 & ~umask == other.stat().st_mode & 0o777  # was 0600 from mkstemp
    assert (path.with_suffix(".json").stat().st_mode & 0o777) == mode


@pytest.mark.parametrize(
    "argv",
    [
        ["segment"],
        ["segment", "x.npy", "-k", "two"],
        ["demo", "--jobs", "x"],
        ["demo", "--task", "nope"],
        ["cluster", "x.npy"],
        ["train", "--steps", "x"],
        ["no-such-command"],
    ],
)
def test_argparse_errors_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "usage" not in err, err


def test_multi_line_value_error_becomes_one_line(
    blobs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import structlearn.cli.cluster as cluster_cli

    def two_lines(*args: object, **kwargs: object) -> None:
        raise ValueError("Invalid parameter 'foo' for estimator KMeans.\nValid parameters are: ['n_init'].")

    monkeypatch.setattr(cluster_cli, "make_estimator", two_lines)
    assert main(["cluster", str(blobs), "--n-clusters", "2", "--quiet", "--param", "foo=1"]) == 2
    line = _one_error_line(capsys.readouterr().err, "cluster")
    assert "Invalid parameter 'foo'" in line and "Valid parameters are" in line  # both halves kept


def test_output_check_creates_nothing(tmp_path: Path) -> None:
    from structlearn.utils.io import check_output_path

    assert check_output_path(tmp_path / "a" / "b" / "x.npy", "--out") == tmp_path / "a" / "b" / "x.npy"
    assert check_output_path(tmp_path / "a" / "run", "--out", directory=True) == tmp_path / "a" / "run"
    assert list(tmp_path.iterdir()) == []  # no folders, no probe file
    with pytest.raises(ValueError, match="is a directory"):
        check_output_path(tmp_path, "--out")
