import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from structlearn.train.checkpoint import load_checkpoint
from structlearn.train.config import TrainConfig
from structlearn.train.engine import Trainer
from structlearn.train.hooks import GradientStatsHook
from structlearn.train.metrics_log import read_metrics
from tests.train.conftest import TINY


def lm_config(corpus: Path, out: Path | None, **kw: Any) -> TrainConfig:
    base = dict(
        **TINY,
        corpus=str(corpus),
        block_size=16,
        batch_size=8,
        steps=12,
        eval_every=6,
        eval_batches=3,
        log_every=3,
        warmup_steps=2,
        out_dir=str(out) if out is not None else None,
        progress=False,
    )
    return TrainConfig(**{**base, **kw})


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_lm_run_writes_metrics_curves_config_and_checkpoint(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = Trainer(lm_config(corpus, out)).fit()
    assert result.status == "completed" and result.step == 12 and result.ok
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 3, 6, 9, 12]
    assert all(math.isfinite(r["train_loss"]) and r["tokens_per_s"] > 0 for r in records)
    assert [r["step"] for r in records if "val_loss" in r] == [6, 12]
    assert records[0]["lr"] == pytest.approx(0.5e-3)  # warmup step 1 of 2
    assert result.final_val_loss == records[-1]["val_loss"]
    assert result.tokens_per_s is not None and result.tokens_per_s > 0 and result.images_per_s is None
    assert result.optimizer_state_bytes == 2 * 4 * result.n_params  # AdamW: two fp32 buffers
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["bytes"] == corpus.stat().st_size and len(cfg["data"]["sha256"]) == 64
    assert cfg["config"]["lr"] == 1e-3  # resolved value
    assert json.loads((out / "result.json").read_text())["status"] == "completed"
    ckpt = load_checkpoint(out / "checkpoint.safetensors")
    assert ckpt["step"] == 12 and ckpt["vocabulary"]["kind"] == "char"
    assert ckpt["train_config"] == lm_config(corpus, out).to_dict()


@pytest.mark.parametrize(("task", "optimizer"), [("lm", "adamw"), ("image", "sgdw")])
def test_resume_is_bit_for_bit(task: str, optimizer: str, corpus: Path, tmp_path: Path) -> None:
    extra: dict[str, Any] = (
        {"task": "image", "batch_size": 64, "train_subset": 200} if task == "image" else {}
    )
    extra["optimizer"] = optimizer
    # 12 steps of 64 images over 200 → epoch boundaries at 3, 6, 9: the split at 5 is mid-epoch.
    cfg = lm_config(corpus, tmp_path / "full", checkpoint_every=5, **extra)
    full = Trainer(cfg)
    full_result = full.fit()
    part_cfg = cfg.replace(out_dir=str(tmp_path / "part"))
    first = Trainer(part_cfg).fit(stop_after=5)
    assert first.status == "stopped" and first.checkpoint_step == 5
    resumed = Trainer(part_cfg, resume=tmp_path / "part" / "checkpoint.safetensors")
    second = resumed.fit()
    assert second.status == "completed"
    final_full, final_resumed = weights(full), weights(resumed)
    assert all(torch.equal(final_full[k], final_resumed[k]) for k in final_full)
    keys = ("step", "lr", "train_loss", "grad_norm", "val_loss", "test_loss", "test_acc")

    def losses(records: list[dict[str, Any]]) -> list[tuple]:
        return [tuple(r.get(k) for k in keys) for r in records]

    assert losses(full_result.history) == losses(second.history)
    # the metrics file of the resumed folder holds the whole run, without duplicates
    assert losses(read_metrics(tmp_path / "part" / "metrics.jsonl")) == losses(full_result.history)
    a = load_file(tmp_path / "full" / "checkpoint.safetensors")
    b = load_file(tmp_path / "part" / "checkpoint.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class PoisonAt:
    """Sets a weight to NaN after update ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def after_step(self, trainer: Trainer, step: int) -> None:
        if step == self.step:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = lm_config(corpus, out, steps=20, checkpoint_every=5, log_every=5)
    result = Trainer(cfg, hooks=[PoisonAt(7)]).fit()
    assert result.status == "diverged" and not result.ok and result.step == 10
    assert "non-finite at step 8" in result.message and "step 5" in result.message
    ckpt = load_checkpoint(out / "checkpoint.safetensors")
    assert ckpt["step"] == 5 and result.checkpoint_step == 5
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    records = read_metrics(out / "metrics.jsonl")
    assert records[-1]["step"] == 10 and records[-1]["train_loss"] is None  # NaN written as null
    assert json.loads((out / "result.json").read_text())["status"] == "diverged"


def test_resume_rejects_corrupt_foreign_and_mismatched_checkpoints(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = lm_config(corpus, out, steps=6)
    Trainer(cfg).fit(stop_after=3)
    ckpt = out / "checkpoint.safetensors"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        Trainer(cfg, resume=bad).fit()
    with pytest.raises(ValueError, match=r"lr is 0\.001 there but 0\.01 here"):
        Trainer(cfg.replace(lr=0.01), resume=ckpt).fit()
    with pytest.raises(ValueError, match="already >= steps 3"):
        Trainer(cfg.replace(steps=3), resume=ckpt).fit()
    from structlearn.train.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "other.safetensors", {"model": {"w": torch.zeros(2)}})
    with pytest.raises(ValueError, match="not a structlearn training checkpoint"):
        Trainer(cfg, resume=tmp_path / "other.safetensors").fit()
    (tmp_path / "corpus.txt").write_text("changed " * 2000)
    with pytest.raises(ValueError, match="different data"):
        Trainer(cfg, resume=ckpt).fit()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing overwritten


class Recorder:
    def __init__(self) -> None:
        self.grad_norms: list[float] = []
        self.calls: list[str] = []

    def on_start(self, trainer: Trainer) -> None:
        self.calls.append("start")

    def after_backward(self, trainer: Trainer, step: int) -> None:
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainer.model.parameters()]))
        self.grad_norms.append(float(norm))

    def after_step(self, trainer: Trainer, step: int) -> dict[str, float] | None:
        return {"hook/value": float(step)} if step in (2, 3) else None

    def on_end(self, trainer: Trainer, result: Any) -> None:
        self.calls.append(f"end:{result.status}")

    def state_dict(self) -> dict[str, Any]:
        return {"n": len(self.grad_norms)}


def test_hooks_see_unclipped_gradients_and_add_to_records(corpus: Path, tmp_path: Path) -> None:
    rec = Recorder()
    cfg = lm_config(corpus, tmp_path / "run", steps=6, grad_clip=1e-3, lr=1e-2)
    result = Trainer(cfg, hooks=[rec]).fit()
    assert rec.calls == ["start", "end:completed"] and len(rec.grad_norms) == 6
    logged = [r for r in result.history if "grad_norm" in r]
    assert logged[0]["grad_norm"] == pytest.approx(rec.grad_norms[0], rel=1e-5)  # before clipping
    assert min(rec.grad_norms) > 1e-3  # so clipping was active
    by_step = {r["step"]: r for r in result.history}
    assert by_step[2] == {"step": 2, "hook/value": 2.0}  # unscheduled step: the hook's numbers only
    assert by_step[3]["hook/value"] == 3.0 and "train_loss" in by_step[3]  # merged into a log record
    assert load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")["hooks"] == {"0:Recorder": {"n": 6}}


def test_gradient_statistics_every_k_steps(corpus: Path) -> None:
    hook = GradientStatsHook(2, stats_fn=lambda model: {"n_tensors": float(len(list(model.parameters())))})
    result = Trainer(lm_config(corpus, None, steps=6), hooks=[hook]).fit()
    assert [r["step"] for r in result.history if "grad/n_tensors" in r] == [2, 4, 6]
    # the built-in statistics (diagnostics.gradients) through the config
    result = Trainer(lm_config(corpus, None, steps=4, grad_stats_every=2)).fit()
    stats = [r for r in result.history if any(k.startswith("grad/") for k in r)]
    assert [r["step"] for r in stats] == [2, 4]
    assert all(math.isfinite(v) for r in stats for k, v in r.items() if k.startswith("grad/"))
    with pytest.raises(ValueError, match="interval"):
        GradientStatsHook(0)


def test_image_task_bf16_and_no_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(
        task="image",
        steps=8,
        batch_size=32,
        eval_every=4,
        log_every=4,
        bf16=True,
        out_dir=None,
        progress=False,
    )
    result = Trainer(cfg).fit()
    assert result.status == "completed" and result.images_per_s and result.images_per_s > 0
    assert 0.0 <= result.final_test_acc <= 1.0 and math.isfinite(result.final_test_loss)
    assert result.checkpoint is None and list(tmp_path.iterdir()) == []


def test_cuda_request_without_cuda_is_a_clear_error(corpus: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        Trainer(lm_config(corpus, tmp_path / "run", device="cuda")).fit()
    assert not (tmp_path / "run").exists()


def test_no_host_sync_per_step(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensor → Python conversions happen at logging steps only: their count does not grow with steps.

    torch's Adam reads its step counter with ``.item()``; that counter lives on the CPU even when the
    model is on a GPU (not a device sync), so conversions made inside ``torch/optim`` are not counted.
    """
    counts = {"n": 0}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *a: Any, _orig: Any = original, **k: Any) -> Any:
            caller = sys._getframe(1).f_code.co_filename
            if f"torch{os.sep}optim{os.sep}" not in caller:
                counts["n"] += 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)

    def syncs(steps: int) -> int:
        counts["n"] = 0
        cfg = lm_config(corpus, None, steps=steps, log_every=1000, eval_every=0, warmup_steps=0)
        Trainer(cfg).fit()
        return counts["n"]

    assert syncs(4) == syncs(24)  # logs at step 1 and the last step, whatever the length


@pytest.mark.parametrize("tune", [True, False])
def test_tune_malloc_follows_the_config(tune: bool, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import structlearn.train.engine as engine

    calls: list[int] = []
    monkeypatch.setattr(engine, "tune_malloc", lambda: calls.append(1) or True)
    Trainer(lm_config(corpus, None, steps=3, warmup_steps=0, tune_malloc=tune)).fit()
    assert calls == ([1] if tune else [])


def test_fit_checks_every_output_file_before_training(corpus: Path, tmp_path: Path) -> None:
    """Used directly (not through the CLI), a directory in curves.png's place once failed only after
    training; Trainer.fit now refuses it before any work."""
    out = tmp_path / "run"
    (out / "curves.png").mkdir(parents=True)
    trainer = Trainer(lm_config(corpus, out))
    with pytest.raises(ValueError, match=r"output file .*curves\.png is a directory"):
        trainer.fit()
    assert sorted(p.name for p in out.iterdir()) == ["curves.png"] and trainer.step == 0
