import json
from pathlib import Path

import pytest

from structlearn.cli import main
from structlearn.train.metrics_log import read_metrics


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("def f(x):\n    return x + 1\n" * 300)
    return path


def lm_args(corpus: Path, out: Path, *extra: str) -> list[str]:
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
        "6",
        "--eval-every",
        "3",
        "--eval-batches",
        "2",
        "--log-every",
        "2",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def test_train_lm_writes_outputs(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(lm_args(corpus, out, "--threads", "1", "--grad-clip", "none")) == 0
    stdout = capsys.readouterr().out
    assert "completed 6 steps" in stdout and "tokens/s" in stdout and "optimizer state" in stdout
    for name in ("config.json", "metrics.jsonl", "curves.png", "checkpoint.safetensors", "result.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["grad_clip"] is None and cfg["threads"] == 1 and cfg["block_size"] == 16
    assert all("grad_norm" not in r for r in read_metrics(out / "metrics.jsonl"))


def test_stop_and_resume_through_the_cli(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main([*lm_args(corpus, out), "--stop-after", "3"]) == 0
    assert json.loads((out / "result.json").read_text())["status"] == "stopped"
    ckpt = out / "checkpoint.safetensors"
    # explicitly changing the trajectory is refused; output-only settings may change
    assert main(["train", "--resume", str(ckpt), "--lr", "0.5", "--no-progress"]) == 2
    assert main(["train", "--resume", str(ckpt), "--log-every", "1", "--no-progress"]) == 0
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert json.loads((out / "result.json").read_text())["status"] == "completed"


def test_resume_accepts_the_run_folder(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main([*lm_args(corpus, out), "--stop-after", "3"]) == 0
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0  # its checkpoint.safetensors
    assert json.loads((out / "result.json").read_text())["status"] == "completed"
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"checkpoint {tmp_path / 'empty' / 'checkpoint.safetensors'} does not exist"), err


@pytest.mark.parametrize(
    "name", ["curves.png", "metrics.jsonl", "config.json", "result.json", "checkpoint.safetensors"]
)
def test_output_file_that_is_a_directory_fails_before_training(
    name: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    (out / name).mkdir(parents=True)
    assert main(lm_args(corpus, out)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"structlearn train: error: output file {out / name} is a directory", err
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing trained, nothing written


def test_divergence_exits_nonzero(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(lm_args(corpus, out, "--optimizer", "sgdw", "--lr", "1e30", "--steps", "12"))
    assert code == 1
    assert "non-finite" in capsys.readouterr().err
    assert json.loads((out / "result.json").read_text())["status"] == "diverged"


def _bad_inputs(corpus: Path, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    return {
        "scheme": (lm_args(corpus, tmp_path / "o", "--norm", "layernorm"), "unknown norm scheme"),
        "optimizer": (lm_args(corpus, tmp_path / "o", "--optim", "lion"), "unknown optimizer"),
        "heads": (lm_args(corpus, tmp_path / "o", "--n-embd", "30", "--n-head", "4"), "not divisible"),
        "missing corpus": (lm_args(tmp_path / "nope.txt", tmp_path / "o"), "does not exist"),
        "empty corpus": (lm_args(empty, tmp_path / "o"), "empty"),
        "context": (lm_args(corpus, tmp_path / "o", "--block-size", "100000"), "context 100000"),
        "batch": (
            [
                "train",
                "--task",
                "image",
                "--batch-size",
                "5000",
                "--no-progress",
                "--out",
                str(tmp_path / "o"),
            ],
            "exceeds",
        ),
        "flag type": (lm_args(corpus, tmp_path / "o", "--steps", "many"), "invalid int value"),
        "patch": (
            ["train", "--task", "image", "--patch-size", "3", "--no-progress", "--out", str(tmp_path / "o")],
            "not divisible by the patch size",
        ),
        "corrupt checkpoint": (["train", "--resume", str(corrupt), "--out", str(tmp_path / "o")], "corrupt"),
        "missing checkpoint": (["train", "--resume", str(tmp_path / "none.safetensors")], "does not exist"),
        "preset warmup": (
            [
                "train",
                "--preset",
                "nanogpt-shakespeare-char-cpu",
                "--steps",
                "2",
                "--out",
                str(tmp_path / "o"),
            ],
            "--preset nanogpt-shakespeare-char-cpu sets --warmup-steps 100, which must be smaller than "
            "--steps 2; give --warmup-steps below 2",
        ),
    }


CASES = [
    "scheme",
    "optimizer",
    "heads",
    "missing corpus",
    "empty corpus",
    "context",
    "batch",
    "flag type",
    "patch",
    "corrupt checkpoint",
    "missing checkpoint",
    "preset warmup",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, match = _bad_inputs(corpus, tmp_path)[case]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
    assert not (tmp_path / "o").exists()
