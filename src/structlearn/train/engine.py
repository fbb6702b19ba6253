"""The training loop shared by every Transformer task: ``Trainer(config).fit() -> TrainResult``.

``fit`` runs small task-agnostic steps: set-up (device, processes, task, model, optimizer; resume) →
outputs (folder lock, ``config.json``) → the loop → the result. The task specifics (data, batches,
evaluation, extra record fields) sit behind ``train.task_api.Task``; one optimizer step is
``train.step.TrainStep`` (fetch this process's batch → forward under optional bf16 autocast →
backward, DDP averaging gradients → ``after_backward`` hooks → optional global-norm clipping →
optimizer and scheduler step), then ``after_step`` hooks. Losses are accumulated on the device
(``train.step.LossWindow``); the host reads them only at logging steps (every ``log_every`` steps, at
evaluations, checkpoints and the last step), where the loop also detects a non-finite loss and stops.

Outputs under ``out_dir`` (rank 0 only; nothing is written before every input has been validated):
``config.json`` (resolved config, data fingerprint), ``metrics.jsonl`` (one record per logged step),
``curves.png``, ``checkpoint.safetensors`` (+ ``.json``) and ``result.json``. The folder is checked to
be writable before any work, and held under an exclusive lock (``.structlearn.lock``, ``flock``) for the
whole run, so a second run on the same folder fails at once instead of mixing the two runs' files;
temporary files left by an interrupted write are removed once the lock is held.

``fit(handle_signals=True)`` (the CLI) turns SIGTERM/SIGINT into a clean stop at the end of the current
step: a checkpoint is saved (when there is an output folder and the weights are finite) and the result
has status ``interrupted``; ``Trainer.interrupted_by`` holds the signal number.

Checkpoints (``train.state``) are taken only at logging steps and never when a weight or the loss is
non-finite. Resuming reads the checkpoint once and restores all of it, so N steps + resume N steps
reproduce an uninterrupted 2N-step run bit for bit (same device and thread count).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from structlearn.train.checkpoint import save_checkpoint
from structlearn.train.components import Components
from structlearn.train.config import TrainConfig
from structlearn.train.distributed import DistContext, init_distributed, resolve_device
from structlearn.train.hooks import BoundLogHook, GradientStatsHook
from structlearn.train.loop import TrainingLoop
from structlearn.train.metrics_log import MetricsLog
from structlearn.train.result import TrainResult, latest_metrics
from structlearn.train.state import (
    CHECKPOINT_KEYS,
    CHECKPOINT_KIND,
    CHECKPOINT_NAME,
    RESUME_OVERRIDABLE,
    ResumeSource,
    check_world_size,
    checkpoint_state,
    checkpoint_target,
    read_resume,
    restore,
    rng_state,
    weights_finite,
)
from structlearn.train.step import TrainStep
from structlearn.train.task_api import Task
from structlearn.utils.allocator import tune_malloc
from structlearn.utils.io import check_output_path, clean_stale_temps, lock_folder, write_json
from structlearn.utils.memory import Measure
from structlearn.utils.seed import seed_everything

# Names importable from here before the split into train.state / train.result / train.distributed.
__all__ = [
    "CHECKPOINT_KEYS",
    "CHECKPOINT_KIND",
    "CHECKPOINT_NAME",
    "RESUME_OVERRIDABLE",
    "TrainResult",
    "Trainer",
    "resolve_device",
]


# Every file a run writes under out_dir.
OUTPUT_FILES = (
    "config.json",
    "metrics.jsonl",
    "curves.png",
    "result.json",
    CHECKPOINT_NAME,
    str(Path(CHECKPOINT_NAME).with_suffix(".json")),
)


class Trainer:
    """Train ``config.task`` with ``config``; ``resume`` = a checkpoint path (or its loaded dict)."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        hooks: Sequence[Any] = (),
        components: Components | None = None,
        resume: ResumeSource | None = None,
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.hooks: list[Any] = list(hooks)
        if config.grad_stats_every:
            self.hooks.append(GradientStatsHook(config.grad_stats_every))
        self.components = components or Components()
        self._resume = resume
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.last_loss: torch.Tensor | None = None  # detached loss of the latest step (for hooks)
        self.out_dir: Path | None = None
        self.checkpoint_path: Path | None = None
        self.checkpoint_step: int | None = None
        self.ctx = DistContext()
        self.interrupted_by: int | None = None  # signal number that stopped fit(handle_signals=True)
        self._lock: Any = None

    # ----------------------------------------------------------------------------------------- helpers
    @property
    def is_main(self) -> bool:
        return self.ctx.is_main

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The forward-pass context (bf16 autocast when ``config.bf16``)."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def probe_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed held-out batch on the device (LM: first validation batch; image: first test batch)."""
        x, y = self.task.probe_batch()
        return x.to(self.device), y.to(self.device)

    def evaluate(self) -> dict[str, float]:
        """Evaluation metrics now (collective under DDP: call it on every rank)."""
        self.model.eval()
        try:
            return self.task.evaluate(self.model, self.device, self.autocast)
        finally:
            self.model.train()

    # ------------------------------------------------------------------------------------------ set-up
    def _setup(self) -> dict[str, Any] | None:
        """Device, processes, task, model, optimizer, scheduler and hooks; the resumed state restored.
        Returns the checkpoint resumed from (read once), or ``None``."""
        cfg = self.config
        ckpt, where = read_resume(self._resume, cfg) if self._resume is not None else (None, "")
        self.device = resolve_device(cfg.device)
        self.ctx = init_distributed(self.device.type)
        if self.ctx.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.ctx.local_rank)
        if ckpt is not None:
            check_world_size(ckpt, self.ctx.world_size)
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        if cfg.tune_malloc:
            tune_malloc()
        seed_everything(cfg.seed)
        self.task: Task = self.components.task(cfg, self.ctx)
        self.model: nn.Module = self.components.model(cfg, self.task.model_info).to(self.device)
        if self.ctx.enabled:  # distinct dropout streams per process; same initial weights on all
            torch.manual_seed(cfg.seed + 1_000_003 * self.ctx.rank)
        self.optimizer = self.components.optimizer(cfg, self.model)
        self.scheduler = self.components.scheduler(cfg, self.optimizer)
        self._add_bound_log_hook()
        self.n_params = sum(p.numel() for p in self.model.parameters())
        if ckpt is not None:
            restore(self, ckpt, where)
        self.ddp_model: nn.Module = self.model
        if self.ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(self.model, device_ids=ids)
        self.train_step = TrainStep(
            cfg, self.ddp_model, self.optimizer, self.scheduler, self.ctx, self.autocast
        )
        return ckpt

    def _add_bound_log_hook(self) -> None:
        """A spectrally bounded optimizer's ``bound/*`` statistics are logged whether the Trainer comes
        from the CLI or is used directly (the CLI's extension hooks are not needed for it)."""
        if not hasattr(self.optimizer, "bound_stats"):
            return
        if not any(isinstance(h, BoundLogHook) for h in self.hooks):
            self.hooks.append(BoundLogHook(self.config.log_every))

    def _prepare_outputs(self, resumed: bool) -> None:
        cfg = self.config
        if cfg.out_dir is None:
            return
        self.out_dir = Path(cfg.out_dir)
        if not self.is_main:
            return
        self._lock = lock_folder(self.out_dir, "output folder")
        clean_stale_temps(self.out_dir)  # a killed write's leftovers; safe: no other run holds the lock
        if not resumed:  # a fresh run replaces a previous run's files in the same folder
            for name in (CHECKPOINT_NAME, Path(CHECKPOINT_NAME).with_suffix(".json").name, "result.json"):
                (self.out_dir / name).unlink(missing_ok=True)
        write_json(
            self.out_dir / "config.json",
            {
                "config": cfg.resolved(),
                "data": self.task.fingerprint,
                "world_size": self.ctx.world_size,
                "n_params": self.n_params,
                "device": str(self.device),
                "torch_threads": torch.get_num_threads(),
                "resumed_from_step": self.step if resumed else None,
            },
        )
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl")
        self.metrics.rewrite(self.history)

    # ------------------------------------------------------------------------------------- checkpoints
    def save(self, path: str | Path | None = None) -> Path | None:
        """Checkpoint the current state (collective under DDP; rank 0 writes). ``None`` if not written."""
        rng = rng_state(self.ctx)
        if not weights_finite(self.model):
            return None
        target = checkpoint_target(path, self.out_dir)
        if target is None or not self.is_main:
            return target
        save_checkpoint(target, checkpoint_state(self, rng))
        self.checkpoint_path, self.checkpoint_step = target, self.step
        return target

    # ---------------------------------------------------------------------------------------------- fit
    def fit(self, stop_after: int | None = None, *, handle_signals: bool = False) -> TrainResult:
        """Train to ``config.steps`` (or stop after step ``stop_after``, checkpointing, to resume later).

        ``handle_signals``: SIGTERM/SIGINT stop the run cleanly after the current step (see the module
        docstring); a second SIGINT raises ``KeyboardInterrupt`` at once.
        """
        if stop_after is not None and stop_after <= 0:
            raise ValueError(f"stop_after must be > 0, got {stop_after}")
        if hasattr(self, "_t_start"):
            raise ValueError("a Trainer runs once; create a new one (with resume=...) to continue")
        if self.config.out_dir is not None and os.environ.get("RANK", "0") == "0":  # before any work
            out = check_output_path(self.config.out_dir, "output folder", directory=True)
            # A directory in a file's place would fail only when that file is written (curves.png:
            # after training), so every file is checked now too.
            for name in OUTPUT_FILES:
                check_output_path(out / name, "output file")
        self._t_start = time.perf_counter()
        previous: dict[int, Any] = {}
        failed = True
        try:
            with Measure() as mem:
                ckpt = self._setup()
                if stop_after is not None and stop_after <= self.step:
                    raise ValueError(
                        f"stop_after {stop_after} is not after the checkpoint's step {self.step}: "
                        "nothing to train (give a larger --stop-after)"
                    )
                if (
                    handle_signals
                    and not self.ctx.enabled
                    and threading.current_thread() is threading.main_thread()
                ):
                    previous = {
                        sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
                    }
                self._start_step = self.step
                self._prepare_outputs(resumed=ckpt is not None)
                if self.is_main and self.config.progress:
                    print(self.task.describe(), file=sys.stderr, flush=True)
                end = (
                    self.config.steps
                    if stop_after is None
                    else min(self.config.steps, max(stop_after, self.step))
                )
                status, message = TrainingLoop(self, end).run()
            result = self._finish(status, message, self.elapsed(), mem)
            failed = False
            return result
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if getattr(self, "metrics", None) is not None:
                self.metrics.close()
            if self._lock is not None:
                self._lock.release(failed=failed)  # a refused run removes the folder it created
                self._lock = None
            self.ctx.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.interrupted_by is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.interrupted_by = signum  # checked by the loop after the current step

    # ------------------------------------------------------------------------------- logging and result
    def elapsed(self) -> float:
        """Seconds since ``fit`` started."""
        return time.perf_counter() - self._t_start

    def plot(self) -> None:
        """``curves.png`` from the history so far (rank 0, with an output folder)."""
        if not (self.is_main and self.out_dir is not None and self.history):
            return
        from structlearn.diagnostics.curves import plot_run

        cfg = self.config
        plot_run(self.history, self.out_dir / "curves.png", title=f"{cfg.task}: {cfg.norm} + {cfg.optimizer}")

    def _finish(self, status: str, message: str, wall_s: float, mem: Measure) -> TrainResult:
        last = latest_metrics(self.history)
        total_items = self.task.items_per_step * (self.step - self._start_step)
        result = TrainResult(
            status=status,
            message=message,
            step=self.step,
            steps=self.config.steps,
            task=self.config.task,
            final_train_loss=last.get("train_loss"),
            final_val_loss=last.get("val_loss"),
            final_test_loss=last.get("test_loss"),
            final_test_acc=last.get("test_acc"),
            throughput=total_items / self.train_s if self.train_s > 0 else 0.0,
            throughput_unit=f"{self.task.unit}/s",
            wall_s=wall_s,
            train_s=self.train_s,
            peak_mb=mem.peak_mb,
            cuda_peak_mb=mem.cuda_peak_bytes / 2**20,
            optimizer_state_bytes=self.components.state_bytes(self.optimizer),
            n_params=self.n_params,
            world_size=self.ctx.world_size,
            checkpoint=str(self.checkpoint_path) if self.checkpoint_path else None,
            checkpoint_step=self.checkpoint_step,
            fingerprint=self.task.fingerprint,
            history=self.history,
        )
        self.plot()
        if self.is_main and self.out_dir is not None:
            write_json(self.out_dir / "result.json", result.to_dict())
        for h in self.hooks:
            if hasattr(h, "on_end"):
                h.on_end(self, result)
        return result
