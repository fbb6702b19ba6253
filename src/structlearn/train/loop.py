"""The step loop of :class:`structlearn.train.engine.Trainer`, task-agnostic.

Each iteration: this process's batch from the task → :class:`~structlearn.train.step.TrainStep` (with
the ``after_backward`` hooks between backward and clipping) → ``after_step`` hooks → a stop on
SIGTERM/SIGINT → at logging steps only (every ``log_every`` steps, evaluations, checkpoints, the first
and the last step) the window's losses are read from the device, the record is written (+ evaluation)
and a checkpoint may be taken. A non-finite training loss, evaluation metric or weight stops the run
with status ``diverged``.
"""

from __future__ import annotations

import math
import signal
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from structlearn.train.step import LossWindow, WindowStats
from structlearn.utils.io import output_error


class TrainingLoop:
    """Train ``trainer`` (set up by ``Trainer._setup``) to step ``end``; :meth:`run` → (status, message)."""

    def __init__(self, trainer: Any, end: int) -> None:
        self.trainer, self.config, self.end = trainer, trainer.config, end
        self.backward_hooks = [h for h in trainer.hooks if hasattr(h, "after_backward")]
        self.step_hooks = [h for h in trainer.hooks if hasattr(h, "after_step")]

    def run(self) -> tuple[str, str]:
        tr, cfg = self.trainer, self.config
        for h in tr.hooks:
            if hasattr(h, "on_start"):
                h.on_start(tr)
        tr.train_s = 0.0
        self.bar = tqdm(
            total=cfg.steps,
            initial=tr.step,
            disable=not (cfg.progress and tr.is_main),
            desc=f"{cfg.task} {cfg.norm}/{cfg.optimizer}",
            unit="step",
            mininterval=1.0,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        self.window = LossWindow(tr.device)
        tr.ddp_model.train()
        try:
            while tr.step < self.end:
                stopped = self._step(tr.step + 1)
                if stopped is not None:
                    return stopped
        finally:
            self.bar.close()
        if tr.step < cfg.steps:
            return "stopped", f"stopped after step {tr.step} of {cfg.steps}"
        return "completed", f"completed {cfg.steps} steps"

    def _step(self, step: int) -> tuple[str, str] | None:
        """Update ``step`` (1-based) and, at a logging step, its record; a status when the run stops."""
        tr, cfg = self.trainer, self.config
        x, y = tr.task.next_batch()
        x, y = x.to(tr.device, non_blocking=True), y.to(tr.device, non_blocking=True)

        def after_backward() -> None:
            for h in self.backward_hooks:
                h.after_backward(tr, step)

        loss, gnorm, lr = tr.train_step(x, y, after_backward)
        tr.last_loss = loss  # for after_step hooks (a device tensor: reading it is the hook's host sync)
        self.window.add(step, loss, gnorm, tr.task.items_per_step)
        tr.step = step
        self.bar.update(1)
        extra: dict[str, Any] = {}
        for h in self.step_hooks:
            extra.update(h.after_step(tr, step) or {})
        if tr.interrupted_by is not None:
            return self._interrupted()
        do_eval = step == cfg.steps or (cfg.eval_every > 0 and step % cfg.eval_every == 0)
        periodic = cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0
        do_ckpt = periodic or (step == self.end and (cfg.final_checkpoint or step < cfg.steps))
        if not (do_eval or do_ckpt or step == self.end or step == 1 or step % cfg.log_every == 0):
            if extra and tr.is_main:  # a hook's numbers at an unscheduled step: no collectives
                self.emit({"step": step, **extra})
            return None
        stopped = self._log_step(step, lr, self.window.reduce(tr.ctx), extra, do_eval, do_ckpt)
        self.window.reset()
        return stopped

    def _log_step(
        self, step: int, lr: float, window: WindowStats, extra: dict[str, Any], do_eval: bool, do_ckpt: bool
    ) -> tuple[str, str] | None:
        """A logging step: the record (+ evaluation), then the checkpoint; a status when the run stops."""
        tr = self.trainer
        tr.train_s += window.seconds
        record: dict[str, Any] = {"step": step, "lr": lr, "train_loss": window.mean_loss}
        if self.config.grad_clip is not None:
            record["grad_norm"] = window.mean_grad_norm
        record.update(tr.task.log_fields())
        record[f"{tr.task.unit}_per_s"] = window.items / window.seconds if window.seconds > 0 else 0.0
        record["elapsed_s"] = round(tr.elapsed(), 3)
        record.update(extra)
        if window.first_bad_step is not None:
            record["train_loss"] = float("nan")
            self.emit(record)
            return "diverged", self._diverged(window.first_bad_step, step)
        if do_eval:
            metrics = tr.evaluate()
            record.update(metrics)
            if not all(math.isfinite(v) for v in metrics.values()):
                self.emit(record)
                return "diverged", self._diverged(None, step, what="evaluation loss")
        self.emit(record)
        keys = ("train_loss", "val_loss", "test_acc")
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in keys}, refresh=False)
        if do_ckpt and tr.out_dir is not None:
            if tr.save() is None:
                return "diverged", self._diverged(None, step, what="a weight")
            if step < self.end:
                tr.plot()
        return None

    def emit(self, record: dict[str, Any]) -> None:
        """Append ``record`` to the history and (rank 0, with an output folder) to ``metrics.jsonl``."""
        tr = self.trainer
        tr.history.append(record)
        if tr.is_main and tr.out_dir is not None:
            try:
                tr.metrics.write(record)
            except OSError as exc:  # e.g. a full disk: name the file, not just the cause
                raise output_error(tr.metrics.path, exc) from None

    def _interrupted(self) -> tuple[str, str]:
        """Checkpoint (when possible) after a SIGTERM/SIGINT; the ``interrupted`` status and message."""
        tr = self.trainer
        name = signal.Signals(tr.interrupted_by or signal.SIGTERM).name
        saved: Path | None = None
        if tr.out_dir is not None:
            saved = tr.checkpoint_path if tr.checkpoint_step == tr.step else tr.save()
        if saved is not None:
            keep = f"checkpoint of step {tr.step} saved to {saved} (continue with --resume {saved})"
        else:
            why = "no output folder" if tr.out_dir is None else "a weight is non-finite"
            keep = f"no checkpoint was saved ({why})"
        return "interrupted", f"interrupted by {name} after step {tr.step} of {self.config.steps}; {keep}"

    def _diverged(self, first_bad: int | None, step: int, what: str = "training loss") -> str:
        tr = self.trainer
        at = f"at step {first_bad}" if first_bad is not None else f"by step {step}"
        keep = (
            f"the last good checkpoint is {tr.checkpoint_path} (step {tr.checkpoint_step})"
            if tr.checkpoint_path is not None
            else "no checkpoint was written before it"
        )
        return f"{what} became non-finite {at} (detected at step {step}); training stopped, {keep}"
