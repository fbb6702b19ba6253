"""``structlearn sample``: defaults that always work, numerically safe sampling, one-line errors and a
quiet stop when the reader of stdout goes away."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from structlearn.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained on text without any newline (vocabulary " abcdef")."""
    tmp = tmp_path_factory.mktemp("sample")
    corpus = tmp / "corpus.txt"
    corpus.write_text("abc def fed cab " * 200)
    argv = ["train", "--n-layer", "1", "--n-head", "1", "--n-embd", "16", "--corpus", str(corpus)]
    argv += ["--block-size", "8", "--batch-size", "2", "--steps", "2", "--eval-every", "0"]
    argv += ["--eval-batches", "1", "--no-progress", "--out", str(tmp / "run")]
    assert main(argv) == 0
    return tmp / "run"


def _sample(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main(["sample", *argv])
    except SystemExit as exc:  # argparse errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err.strip()


def test_default_prompt_works_without_a_newline_in_the_vocabulary(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = _sample(capsys, str(run), "--tokens", "5")
    assert rc == 0 and err == "" and out.startswith(" ")  # the vocabulary's first character
    rc, out, _ = _sample(capsys, "--help")
    help_text = " ".join(out.split())
    assert rc == 0 and "or the vocabulary's first character if the model never saw a newline" in help_text


def test_the_unknown_character_id_is_never_sampled(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # near-uniform over 8 ids: without the mask 300 tokens would hold about 37 U+FFFD
    rc, out, _ = _sample(capsys, str(run), "--tokens", "300", "--temperature", "1000", "--prompt", "a")
    assert rc == 0 and len(out) == 302 and "\ufffd" not in out


def test_tiny_temperatures_sample_greedily(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outs = {
        _sample(capsys, str(run), "--prompt", "a", "--tokens", "20", "--temperature", t, "--seed", s)[1:]
        for t, s in (("1e-40", "1"), ("1e-300", "2"), ("5e-324", "3"))
    }
    assert len(outs) == 1 and next(iter(outs))[1] == ""


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "meta"])
def test_bad_device_is_one_line_exit_2(run: Path, capsys: pytest.CaptureFixture[str], device: str) -> None:
    rc, out, err = _sample(capsys, str(run), "--prompt", "a", "--device", device)
    assert rc == 2 and out == ""
    assert err == f"structlearn sample: error: device must be cpu, cuda, cuda:N or auto, got {device!r}"


def test_seed_range_is_checked_by_the_flag(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _sample(capsys, str(run), "--prompt", "a", "--seed", "99999999999999999999")
    assert rc == 2 and "argument --seed: must be <= 18446744073709551615" in err and "\n" not in err
    assert _sample(capsys, str(run), "--prompt", "a", "--tokens", "2", "--seed", str(2**64 - 1))[0] == 0


def test_reader_closing_the_pipe_stops_quietly(run: Path) -> None:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write: like `| head -1` after its line
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "structlearn.cli", "sample", str(run), "--prompt", "a", "--tokens", "5"],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(w)
    assert (proc.returncode, proc.stderr) == (141, "")
