"""The engine split into task-agnostic steps (issue 16, item 3): same trajectories, old import paths,
and the checkpoint read once on resume."""

import importlib
from pathlib import Path
from typing import Any

import pytest

import structlearn.train.checkpoint as checkpoint_module
from structlearn.cli import main
from structlearn.train.config import TrainConfig
from structlearn.train.engine import Trainer
from tests.train.conftest import TINY

TIMING = ("elapsed_s", "tokens_per_s", "images_per_s")

# Recorded with the engine before the split (commit 15dc6e5, torch 2.13 CPU, one thread); the learning
# rates, steps and fields are exact, the losses and gradient norms within float noise across CPUs.
LM_BEFORE = [
    {"step": 1, "lr": 0.0005, "train_loss": 3.0800161361694336, "grad_norm": 1.4436131715774536},
    {"step": 2, "lr": 0.001, "train_loss": 3.0957202911376953, "grad_norm": 1.238783597946167},
    {
        "step": 3,
        "lr": 0.001,
        "train_loss": 3.0674519538879395,
        "grad_norm": 1.1957298517227173,
        "val_loss": 3.031990647315979,
    },
    {
        "step": 4,
        "lr": 0.0008681980515339464,
        "train_loss": 3.0276122093200684,
        "grad_norm": 1.0884840488433838,
    },
    {
        "step": 6,
        "lr": 0.00023180194846605365,
        "train_loss": 3.022689461708069,
        "grad_norm": 1.081084966659546,
        "val_loss": 3.01694655418396,
    },
]
IMAGE_BEFORE = [
    {
        "step": 1,
        "lr": 0.001,
        "train_loss": 2.305854082107544,
        "grad_norm": 1.6564730405807495,
        "epoch": 0.3333,
    },
    {
        "step": 2,
        "lr": 0.0009397114317029974,
        "train_loss": 2.3274624347686768,
        "grad_norm": 2.1194663047790527,
        "epoch": 0.6667,
    },
    {
        "step": 3,
        "lr": 0.0007750000000000001,
        "train_loss": 2.30173921585083,
        "grad_norm": 1.6716511249542236,
        "epoch": 1.0,
        "test_loss": 2.284353754255507,
        "test_acc": 0.175,
    },
    {
        "step": 4,
        "lr": 0.00055,
        "train_loss": 2.2761945724487305,
        "grad_norm": 1.7412906885147095,
        "epoch": 1.3333,
    },
    {
        "step": 6,
        "lr": 0.00016028856829700258,
        "train_loss": 2.284838080406189,
        "grad_norm": 3.8060609102249146,
        "epoch": 2.0,
        "test_loss": 2.2792603386773003,
        "test_acc": 0.19722222222222222,
    },
]


def _same(records: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    got = [{k: v for k, v in r.items() if k not in TIMING} for r in records]
    assert [list(r) for r in got] == [list(r) for r in expected]  # the same fields, in the same order
    for g, e in zip(got, expected, strict=True):
        for k, v in e.items():
            if k in ("train_loss", "grad_norm", "val_loss", "test_loss"):
                assert g[k] == pytest.approx(v, rel=1e-4), (g["step"], k)
            else:
                assert g[k] == v, (g["step"], k)


def test_lm_trajectory_is_the_one_before_the_split(corpus: Path) -> None:
    # Gradient accumulation, clipping, dropout, warmup and evaluations: every part of a step.
    cfg = TrainConfig(
        **TINY,
        corpus=str(corpus),
        block_size=16,
        batch_size=4,
        grad_accum=2,
        steps=6,
        eval_every=3,
        eval_batches=2,
        log_every=2,
        warmup_steps=2,
        grad_clip=0.5,
        dropout=0.1,
        out_dir=None,
        progress=False,
    )
    _same(Trainer(cfg).fit().history, LM_BEFORE)


def test_image_trajectory_is_the_one_before_the_split() -> None:
    cfg = TrainConfig(
        **TINY,
        task="image",
        batch_size=32,
        train_subset=96,
        steps=6,
        eval_every=3,
        log_every=2,
        grad_clip=1.0,
        out_dir=None,
        progress=False,
    )
    _same(Trainer(cfg).fit().history, IMAGE_BEFORE)


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            "structlearn.train.engine",
            (
                "Trainer",
                "TrainResult",
                "resolve_device",
                "CHECKPOINT_KIND",
                "CHECKPOINT_NAME",
                "CHECKPOINT_KEYS",
                "RESUME_OVERRIDABLE",
            ),
        ),
        (
            "structlearn.train.tasks",
            ("LMTask", "ImageTask", "SegmentTask", "Task", "make_task", "AutocastFactory"),
        ),
        ("structlearn.train", ("TrainConfig", "Trainer", "TrainResult", "Components", "GradientStatsHook")),
    ],
)
def test_import_paths_from_before_the_split_still_work(module: str, names: tuple[str, ...]) -> None:
    mod = importlib.import_module(module)
    assert all(getattr(mod, n, None) is not None for n in names)


def test_cli_resume_reads_the_checkpoint_once(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = [
        "train",
        "--corpus",
        str(corpus),
        "--n-layer",
        "1",
        "--n-head",
        "2",
        "--n-embd",
        "16",
        "--block-size",
        "16",
        "--batch-size",
        "4",
        "--steps",
        "4",
        "--eval-every",
        "0",
        "--eval-batches",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main([*argv, "--stop-after", "2"]) == 0
    opened: list[str] = []
    real_open = checkpoint_module.safe_open

    def counting_open(path: str, *a: Any, **k: Any) -> Any:
        opened.append(path)
        return real_open(path, *a, **k)

    monkeypatch.setattr(checkpoint_module, "safe_open", counting_open)
    ckpt = str(out / "checkpoint.safetensors")
    assert main(["train", "--resume", ckpt, "--steps", "2", "--no-progress"]) == 2
    # Messages still name the file the state was read from, though the Trainer gets the loaded state.
    assert f"checkpoint {ckpt} is at step 2, already >= steps 2" in capsys.readouterr().err
    opened.clear()
    assert main(["train", "--resume", ckpt, "--no-progress"]) == 0
    assert opened == [ckpt]  # was read twice: by the CLI for the config, then again by the Trainer
