"""The training loop shared by every Transformer task: ``Trainer(config).fit() -> TrainResult``.

One step = fetch this process's batch → forward under optional bf16 autocast → backward (DDP averages
gradients across processes) → ``after_backward`` hooks → optional global-norm clipping → optimizer and
scheduler step → ``after_step`` hooks. Losses are accumulated on the device; the host reads them only
at logging steps (every ``log_every`` steps, at evaluations, checkpoints and the last step), where the
loop also detects a non-finite loss and stops.

Outputs under ``out_dir`` (rank 0 only; nothing is written before every input has been validated):
``config.json`` (resolved config, data fingerprint), ``metrics.jsonl`` (one record per logged step),
``curves.png``, ``checkpoint.safetensors`` (+ ``.json``) and ``result.json``. The folder is checked to
be writable before any work, and held under an exclusive lock (``.structlearn.lock``, ``flock``) for the
whole run, so a second run on the same folder fails at once instead of mixing the two runs' files;
temporary files left by an interrupted write are removed once the lock is held.

``fit(handle_signals=True)`` (the CLI) turns SIGTERM/SIGINT into a clean stop at the end of the current
step: a checkpoint is saved (when there is an output folder and the weights are finite) and the result
has status ``interrupted``; ``Trainer.interrupted_by`` holds the signal number.

Checkpoints hold the model, optimizer and scheduler states, the step, every RNG state (Python, NumPy,
torch CPU/CUDA, per process), the data stream's state (generator, epoch permutation), hook states, the
metrics history, the config and the vocabulary. They are taken only at logging steps and never when a
weight or the loss is non-finite. Resuming restores all of it, so N steps + resume N steps reproduce an
uninterrupted 2N-step run bit for bit (same device and thread count).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from structlearn.train.checkpoint import check_state_shapes, check_step, load_checkpoint, save_checkpoint
from structlearn.train.components import Components
from structlearn.train.config import TrainConfig
from structlearn.train.distributed import DistContext, init_distributed
from structlearn.train.hooks import BoundLogHook, GradientStatsHook
from structlearn.train.metrics_log import MetricsLog, clean_record
from structlearn.train.tasks import Task, make_task
from structlearn.utils.allocator import tune_malloc
from structlearn.utils.io import (
    check_output_path,
    clean_stale_temps,
    lock_folder,
    output_error,
    write_json,
)
from structlearn.utils.memory import Measure
from structlearn.utils.seed import seed_everything

CHECKPOINT_KIND = "structlearn-train-v1"
CHECKPOINT_NAME = "checkpoint.safetensors"
CHECKPOINT_KEYS = ("train_config", "step", "model", "optimizer", "scheduler", "data", "rng")
# Fields a resumed run may change: they affect logging, outputs or speed, not the trajectory (``steps``
# stretches the cosine schedule from the checkpoint on).
RESUME_OVERRIDABLE = frozenset(
    {
        "out_dir",
        "steps",
        "threads",
        "tune_malloc",
        "device",
        "progress",
        "log_every",
        "eval_every",
        "checkpoint_every",
        "final_checkpoint",
        "grad_stats_every",
        "compile",
        "eval_full",
    }
)


@dataclass
class TrainResult:
    """Outcome of ``Trainer.fit``. ``status``: completed | stopped (``stop_after``) | diverged |
    interrupted (SIGTERM/SIGINT with ``fit(handle_signals=True)``)."""

    status: str
    message: str
    step: int
    steps: int
    task: str
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    final_test_loss: float | None = None
    final_test_acc: float | None = None
    throughput: float = 0.0
    throughput_unit: str = "tokens/s"
    wall_s: float = 0.0
    train_s: float = 0.0
    peak_mb: float = 0.0
    cuda_peak_mb: float = 0.0
    optimizer_state_bytes: int = 0
    n_params: int = 0
    world_size: int = 1
    checkpoint: str | None = None
    checkpoint_step: int | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "stopped")

    @property
    def tokens_per_s(self) -> float | None:
        return self.throughput if self.throughput_unit == "tokens/s" else None

    @property
    def images_per_s(self) -> float | None:
        return self.throughput if self.throughput_unit == "images/s" else None

    def to_dict(self, history: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if history:
            out["history"] = [clean_record(r) for r in self.history]
        else:
            out.pop("history")
        return clean_record(out)


def resolve_device(name: str) -> torch.device:
    """``cpu`` by default; CUDA only when asked for and present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name} requested but CUDA is not available (use --device cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {name} requested but only {torch.cuda.device_count()} CUDA devices exist")
    return dev


class Trainer:
    """Train ``config.task`` with ``config``; ``resume`` = a checkpoint path (or its loaded dict)."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        hooks: Sequence[Any] = (),
        components: Components | None = None,
        resume: str | Path | dict[str, Any] | None = None,
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
    def _load_resume(self) -> dict[str, Any] | None:
        if self._resume is None:
            return None
        src = self._resume
        ckpt = src if isinstance(src, dict) else load_checkpoint(src)
        where = self._where = "checkpoint" if isinstance(src, dict) else f"checkpoint {src}"
        meta = ckpt.get("meta") if isinstance(ckpt, dict) else None
        if not isinstance(meta, dict) or meta.get("kind") != CHECKPOINT_KIND:
            raise ValueError(f"{where} is not a structlearn training checkpoint")
        missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
        if missing:
            raise ValueError(f"{where} is incomplete (missing {', '.join(missing)})")
        saved = TrainConfig.from_dict(ckpt["train_config"]).resolved()
        mine = self.config.resolved()
        for f, a in saved.items():
            b = mine[f]
            if f not in RESUME_OVERRIDABLE and a != b:
                raise ValueError(f"{where} does not match this run: {f} is {a!r} there but {b!r} here")
        check_step(ckpt, where)  # also for a checkpoint passed in memory (files are checked on load)
        step = int(ckpt["step"])
        if step >= self.config.steps:
            raise ValueError(
                f"{where} is at step {step}, already >= steps {self.config.steps}; raise --steps"
            )
        return ckpt

    def _setup(self) -> dict[str, Any] | None:
        cfg = self.config
        ckpt = self._load_resume()
        self.device = resolve_device(cfg.device)
        self.ctx = init_distributed(self.device.type)
        if self.ctx.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.ctx.local_rank)
        if ckpt is not None and int(ckpt["meta"].get("world_size", 1)) != self.ctx.world_size:
            raise ValueError(
                f"checkpoint was written by {ckpt['meta'].get('world_size')} processes, "
                f"this run has {self.ctx.world_size}"
            )
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        if cfg.tune_malloc:
            tune_malloc()
        seed_everything(cfg.seed)
        self.task: Task = make_task(cfg, self.ctx)
        model = self.components.model(cfg, self.task.model_info)
        self.model: nn.Module = model.to(self.device)
        if self.ctx.enabled:  # distinct dropout streams per process; same initial weights on all
            torch.manual_seed(cfg.seed + 1_000_003 * self.ctx.rank)
        self.optimizer = self.components.optimizer(cfg, self.model)
        self.scheduler = self.components.scheduler(cfg, self.optimizer)
        self._add_bound_log_hook()
        self.n_params = sum(p.numel() for p in self.model.parameters())
        if ckpt is not None:
            self._restore(ckpt)
        self.ddp_model: nn.Module = self.model
        if self.ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(self.model, device_ids=ids)
        self._compiled: Any = None
        self._compile_ok = False
        if cfg.compile:
            try:
                self._compiled = torch.compile(self.ddp_model)
            except Exception as exc:  # e.g. an unsupported Python/platform: eager instead
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                warnings.warn(
                    f"torch.compile failed ({type(exc).__name__}: {first[:200]}); running eager", stacklevel=2
                )
        return ckpt

    def _add_bound_log_hook(self) -> None:
        """A spectrally bounded optimizer's ``bound/*`` statistics are logged whether the Trainer comes
        from the CLI or is used directly (the CLI's extension hooks are not needed for it)."""
        if not hasattr(self.optimizer, "bound_stats"):
            return
        if not any(isinstance(h, BoundLogHook) for h in self.hooks):
            self.hooks.append(BoundLogHook(self.config.log_every))

    def _restore(self, ckpt: dict[str, Any]) -> None:
        where = self._where
        if ckpt["meta"].get("fingerprint") != self.task.fingerprint:
            raise ValueError(
                f"{where} was trained on different data: {ckpt['meta'].get('fingerprint')} there, "
                f"{self.task.fingerprint} here"
            )
        if ckpt.get("vocabulary") != self.task.vocabulary:
            raise ValueError(f"{where} vocabulary differs from this corpus's")
        try:
            check_state_shapes(self.model.state_dict(), ckpt["model"], where)  # names tensor and shapes
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.task.load_state_dict(ckpt["data"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{where} does not match the model/optimizer: {first}") from None
        for key, hook in self._hook_keys():
            if key in ckpt.get("hooks", {}) and hasattr(hook, "load_state_dict"):
                hook.load_state_dict(ckpt["hooks"][key])
        self.history = [dict(r) for r in ckpt.get("history", [])]
        self.step = int(ckpt["step"])
        self.checkpoint_step = self.step
        self._set_rng(ckpt["rng"])

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

    # --------------------------------------------------------------------------------------- RNG state
    def _rng_state(self) -> dict[str, Any]:
        keys, pos, has_gauss, cached = np.random.get_state()[1:]  # noqa: NPY002 - saving the global RNG
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": {
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "gauss": [int(has_gauss), float(cached)],
            },
            "python": random.getstate(),
            "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_initialized() else [],
        }
        return {"ranks": self.ctx.all_gather_object(state)}

    def _set_rng(self, rng: dict[str, Any]) -> None:
        ranks = rng["ranks"]
        state = ranks[self.ctx.rank]
        torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
        npst = state["numpy"]
        np.random.set_state(  # noqa: NPY002
            (
                "MT19937",
                npst["keys"].numpy().astype(np.uint32),
                npst["pos"],
                npst["gauss"][0],
                npst["gauss"][1],
            )
        )
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([t.to(torch.uint8).cpu() for t in state["cuda"]])

    # ------------------------------------------------------------------------------------- checkpoints
    def _hook_keys(self) -> list[tuple[str, Any]]:
        return [(f"{i}:{type(h).__name__}", h) for i, h in enumerate(self.hooks)]

    def _weights_finite(self) -> bool:
        """One host sync (a norm could overflow for finite weights, so test the entries)."""
        return bool(torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all())

    def save(self, path: str | Path | None = None) -> Path | None:
        """Checkpoint the current state (collective under DDP; rank 0 writes). ``None`` if not written."""
        rng = self._rng_state()
        if not self._weights_finite():
            return None
        target = (
            Path(path) if path is not None else (self.out_dir / CHECKPOINT_NAME if self.out_dir else None)
        )
        if target is None or not self.is_main:
            return target
        hooks = {k: h.state_dict() for k, h in self._hook_keys() if hasattr(h, "state_dict")}
        state = {
            "meta": {
                "kind": CHECKPOINT_KIND,
                "world_size": self.ctx.world_size,
                "fingerprint": self.task.fingerprint,
                "n_params": self.n_params,
                "torch": torch.__version__,
            },
            "train_config": self.config.to_dict(),
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "data": self.task.state_dict(),
            "vocabulary": self.task.vocabulary,
            "rng": rng,
            "hooks": hooks,
            "history": self.history,
        }
        save_checkpoint(target, state)
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
        if self.config.out_dir is not None and os.environ.get("RANK", "0") == "0":
            check_output_path(self.config.out_dir, "output folder", directory=True)  # before any work
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
                    print(self._data_line(), file=sys.stderr, flush=True)
                status, message = self._train(stop_after)
            result = self._finish(status, message, self._elapsed(), mem)
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

    def _interrupted(self) -> tuple[str, str]:
        """Checkpoint (when possible) after a SIGTERM/SIGINT; the ``interrupted`` status and message."""
        name = signal.Signals(self.interrupted_by or signal.SIGTERM).name
        saved: Path | None = None
        if self.out_dir is not None:
            saved = self.checkpoint_path if self.checkpoint_step == self.step else self.save()
        if saved is not None:
            keep = f"checkpoint of step {self.step} saved to {saved} (continue with --resume {saved})"
        else:
            why = "no output folder" if self.out_dir is None else "a weight is non-finite"
            keep = f"no checkpoint was saved ({why})"
        return "interrupted", f"interrupted by {name} after step {self.step} of {self.config.steps}; {keep}"

    def _train(self, stop_after: int | None) -> tuple[str, str]:
        cfg = self.config
        end = cfg.steps if stop_after is None else min(cfg.steps, max(stop_after, self.step))
        for h in self.hooks:
            if hasattr(h, "on_start"):
                h.on_start(self)
        backward_hooks = [h for h in self.hooks if hasattr(h, "after_backward")]
        step_hooks = [h for h in self.hooks if hasattr(h, "after_step")]
        params = [p for p in self.model.parameters() if p.requires_grad]
        dev = self.device
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        gnorm_sum = torch.zeros((), dtype=torch.float64, device=dev)
        bad_step = torch.full((), -1, dtype=torch.int64, device=dev)
        n_window = 0
        self.train_s = 0.0
        items = 0
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not (cfg.progress and self.is_main),
            desc=f"{cfg.task} {cfg.norm}/{cfg.optimizer}",
            unit="step",
            mininterval=1.0,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        t_window = time.perf_counter()
        self.ddp_model.train()
        try:
            while self.step < end:
                x, y = self.task.next_batch()
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                loss = self._forward_backward(x, y)
                step = self.step + 1
                for h in backward_hooks:
                    h.after_backward(self, step)
                if cfg.grad_clip is not None:
                    gnorm_sum += torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True).double()
                lr = self.optimizer.param_groups[0]["lr"]
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                ld = loss.detach()
                loss_sum += ld.double()
                bad_step = torch.where((bad_step < 0) & ~torch.isfinite(ld), step, bad_step)
                self.step = step
                n_window += 1
                items += self.task.items_per_step
                bar.update(1)
                extra: dict[str, Any] = {}
                for h in step_hooks:
                    out = h.after_step(self, step)
                    if out:
                        extra.update(out)
                if self.interrupted_by is not None:
                    return self._interrupted()
                do_eval = step == cfg.steps or (cfg.eval_every > 0 and step % cfg.eval_every == 0)
                periodic = cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0
                do_ckpt = periodic or (step == end and (cfg.final_checkpoint or step < cfg.steps))
                if not (do_eval or do_ckpt or step == end or step == 1 or step % cfg.log_every == 0):
                    if extra and self.is_main:  # a hook's numbers at an unscheduled step: no collectives
                        self._emit({"step": step, **extra})
                    continue
                # ---- logging step: the only host syncs of the loop
                stats = self.ctx.all_reduce(torch.stack([loss_sum, gnorm_sum]))
                window_bad = torch.where(
                    bad_step < 0, torch.full((), math.inf, dtype=torch.float64, device=dev), bad_step.double()
                )
                first_bad = float(self.ctx.all_reduce(window_bad.clone(), "min"))
                window_s = time.perf_counter() - t_window
                self.train_s += window_s
                mean_loss = float(stats[0]) / (n_window * self.ctx.world_size)
                record: dict[str, Any] = {"step": step, "lr": lr, "train_loss": mean_loss}
                if cfg.grad_clip is not None:
                    record["grad_norm"] = float(stats[1]) / (n_window * self.ctx.world_size)
                if self.task.unit == "images":
                    record["epoch"] = round(self.task.epoch_progress(), 4)
                record[f"{self.task.unit}_per_s"] = items / window_s if window_s > 0 else 0.0
                record["elapsed_s"] = round(self._elapsed(), 3)
                record.update(extra)
                if math.isfinite(first_bad):
                    record["train_loss"] = float("nan")
                    self._emit(record)
                    return "diverged", self._diverged_message(int(first_bad), step)
                if do_eval:
                    metrics = self.evaluate()
                    record.update(metrics)
                    if not all(math.isfinite(v) for v in metrics.values()):
                        self._emit(record)
                        return "diverged", self._diverged_message(None, step, what="evaluation loss")
                self._emit(record)
                bar.set_postfix(
                    {k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", "val_loss", "test_acc")},
                    refresh=False,
                )
                if do_ckpt and self.out_dir is not None:
                    if self.save() is None:
                        return "diverged", self._diverged_message(None, step, what="a weight")
                    if step < end:
                        self._plot()
                loss_sum.zero_()
                gnorm_sum.zero_()
                n_window, items = 0, 0
                t_window = time.perf_counter()
        finally:
            bar.close()
        if self.step < cfg.steps:
            return "stopped", f"stopped after step {self.step} of {cfg.steps}"
        return "completed", f"completed {cfg.steps} steps"

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss and gradients of one step: ``grad_accum`` micro-batches, each loss scaled 1/N.

        The micro-batches split one batch of N·B samples into equal parts, so the summed gradient
        equals that of the one large batch (the losses are means over equal-sized parts). DDP
        all-reduces only on the last micro-batch (``no_sync``). Returns the step's mean loss (detached).
        """
        n = self.config.grad_accum
        if n == 1:
            with self.autocast():
                _, loss = self._forward(x, y)
            loss.backward()
            return loss.detach()
        total = torch.zeros((), device=x.device)
        xs, ys = x.chunk(n), y.chunk(n)
        for i in range(n):
            sync = i == n - 1 or not self.ctx.enabled
            ctx = contextlib.nullcontext() if sync else self.ddp_model.no_sync()
            with ctx:
                with self.autocast():
                    _, loss = self._forward(xs[i], ys[i])
                (loss / n).backward()
            total += loss.detach().float() / n
        return total

    def _forward(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        """The training forward: the compiled model when ``config.compile`` worked, else eager.

        torch.compile compiles lazily, at the first call, so a failure (no C compiler, an unsupported
        platform) surfaces here: the run warns once and continues with the eager model.
        """
        fwd = self._compiled if self._compiled is not None else self.ddp_model
        if self._compiled is None or self._compile_ok:
            return fwd(x, y)
        try:
            out = fwd(x, y)
            self._compile_ok = True
            return out
        except Exception as exc:  # any compiler failure: fall back, never stop the run
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}: {first[:200]}); running eager", stacklevel=2
            )
            self._compiled = None
            return self.ddp_model(x, y)

    def _data_line(self) -> str:
        fp = self.task.fingerprint
        if self.config.task == "lm":
            return (
                f"data: {fp['source']}: {fp['files']} files, {fp['bytes']:,} bytes, "
                f"sha256 {fp['sha256'][:16]}…, "
                f"{self.config.tokenizer} vocabulary {self.task.model_info['vocab_size']}"
            )
        return (
            f"data: {fp['dataset']}: {fp['n_train']} train / {fp['n_test']} test, shape {fp['image_shape']}"
        )

    def _elapsed(self) -> float:
        return time.perf_counter() - self._t_start

    def _emit(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.is_main and self.out_dir is not None:
            try:
                self.metrics.write(record)
            except OSError as exc:  # e.g. a full disk: name the file, not just the cause
                raise output_error(self.metrics.path, exc) from None

    def _diverged_message(self, first_bad: int | None, step: int, what: str = "training loss") -> str:
        at = f"at step {first_bad}" if first_bad is not None else f"by step {step}"
        keep = (
            f"the last good checkpoint is {self.checkpoint_path} (step {self.checkpoint_step})"
            if self.checkpoint_path is not None
            else "no checkpoint was written before it"
        )
        return f"{what} became non-finite {at} (detected at step {step}); training stopped, {keep}"

    def _plot(self) -> None:
        if not (self.is_main and self.out_dir is not None and self.history):
            return
        from structlearn.diagnostics.curves import plot_run

        cfg = self.config
        plot_run(self.history, self.out_dir / "curves.png", title=f"{cfg.task}: {cfg.norm} + {cfg.optimizer}")

    def _finish(self, status: str, message: str, wall_s: float, mem: Measure) -> TrainResult:
        cfg = self.config
        last: dict[str, Any] = {}
        for r in self.history:  # latest value of each metric
            last.update({k: v for k, v in r.items() if v is not None})
        total_items = self.task.items_per_step * (self.step - self._start_step)
        result = TrainResult(
            status=status,
            message=message,
            step=self.step,
            steps=cfg.steps,
            task=cfg.task,
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
        self._plot()
        if self.is_main and self.out_dir is not None:
            write_json(self.out_dir / "result.json", result.to_dict())
        for h in self.hooks:
            if hasattr(h, "on_end"):
                h.on_end(self, result)
        return result
