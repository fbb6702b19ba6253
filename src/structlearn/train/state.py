"""A training run's state in a checkpoint: what is saved, and how a resume is read, checked and restored.

A checkpoint holds the model, optimizer and scheduler states, the step, every RNG state (Python, NumPy,
torch CPU/CUDA, per process), the data stream's state, hook states, the metrics history, the config and
the vocabulary (:func:`checkpoint_state`). A resume source — a path, or the state already loaded by
:func:`~structlearn.train.checkpoint.load_checkpoint` (the CLI reads it for the config) — is read at most
once (:func:`read_resume`), checked against this run's config, process count and data, and restored in
full (:func:`restore`), so N steps + resume N steps reproduce an uninterrupted 2N-step run bit for bit.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from structlearn.train.checkpoint import check_state_shapes, check_step, load_checkpoint
from structlearn.train.config import TrainConfig
from structlearn.train.distributed import DistContext
from structlearn.train.task_api import Task

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

ResumeSource = str | os.PathLike[str] | dict[str, Any]


class Run(Protocol):
    """The parts of a run (:class:`structlearn.train.engine.Trainer`) that a checkpoint saves/restores."""

    config: TrainConfig
    ctx: DistContext
    task: Task
    model: nn.Module
    optimizer: Any
    scheduler: Any
    hooks: list[Any]
    history: list[dict[str, Any]]
    step: int
    n_params: int
    checkpoint_step: int | None


def read_resume(src: ResumeSource, config: TrainConfig) -> tuple[dict[str, Any], str]:
    """The checkpoint to resume from (read from disk only when ``src`` is a path) and how messages name
    it; ``ValueError`` unless it is a complete training checkpoint of this run's config, short of
    ``config.steps``."""
    ckpt = src if isinstance(src, dict) else load_checkpoint(src)
    source = getattr(ckpt, "source", None)  # a state loaded by load_checkpoint remembers its file
    where = "checkpoint" if source is None else f"checkpoint {source}"
    meta = ckpt.get("meta") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or meta.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{where} is not a structlearn training checkpoint")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{where} is incomplete (missing {', '.join(missing)})")
    saved = TrainConfig.from_dict(ckpt["train_config"]).resolved()
    mine = config.resolved()
    for f, a in saved.items():
        b = mine[f]
        if f not in RESUME_OVERRIDABLE and a != b:
            raise ValueError(f"{where} does not match this run: {f} is {a!r} there but {b!r} here")
    if source is None:  # a dict built in memory; load_checkpoint has already checked a file's step
        check_step(ckpt, where)
    step = int(ckpt["step"])
    if step >= config.steps:
        raise ValueError(f"{where} is at step {step}, already >= steps {config.steps}; raise --steps")
    return ckpt, where


def check_world_size(ckpt: dict[str, Any], world_size: int) -> None:
    if int(ckpt["meta"].get("world_size", 1)) != world_size:
        raise ValueError(
            f"checkpoint was written by {ckpt['meta'].get('world_size')} processes, this run has {world_size}"
        )


def restore(run: Run, ckpt: dict[str, Any], where: str) -> None:
    """Load every saved state into ``run`` (built fresh with the same config); one-line ``ValueError``
    naming the mismatch when the checkpoint belongs to other data or another model."""
    task = run.task
    if ckpt["meta"].get("fingerprint") != task.fingerprint:
        raise ValueError(
            f"{where} was trained on different data: {ckpt['meta'].get('fingerprint')} there, "
            f"{task.fingerprint} here"
        )
    if ckpt.get("vocabulary") != task.vocabulary:
        raise ValueError(f"{where} vocabulary differs from this corpus's")
    try:
        check_state_shapes(run.model.state_dict(), ckpt["model"], where)  # names tensor and shapes
        run.model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
        task.load_state_dict(ckpt["data"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{where} does not match the model/optimizer: {first}") from None
    for key, hook in hook_keys(run.hooks):
        if key in ckpt.get("hooks", {}) and hasattr(hook, "load_state_dict"):
            hook.load_state_dict(ckpt["hooks"][key])
    run.history = [dict(r) for r in ckpt.get("history", [])]
    run.step = int(ckpt["step"])
    run.checkpoint_step = run.step
    set_rng_state(ckpt["rng"], run.ctx.rank)


def checkpoint_state(run: Run, rng: dict[str, Any]) -> dict[str, Any]:
    """The nested state :func:`~structlearn.train.checkpoint.save_checkpoint` writes (``rng``: the
    gathered :func:`rng_state`, a collective, taken on every rank before rank 0 writes)."""
    return {
        "meta": {
            "kind": CHECKPOINT_KIND,
            "world_size": run.ctx.world_size,
            "fingerprint": run.task.fingerprint,
            "n_params": run.n_params,
            "torch": torch.__version__,
        },
        "train_config": run.config.to_dict(),
        "step": run.step,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "data": run.task.state_dict(),
        "vocabulary": run.task.vocabulary,
        "rng": rng,
        "hooks": {k: h.state_dict() for k, h in hook_keys(run.hooks) if hasattr(h, "state_dict")},
        "history": run.history,
    }


def checkpoint_target(path: str | Path | None, out_dir: Path | None) -> Path | None:
    """Where ``Trainer.save`` writes: the path given, else ``out_dir/checkpoint.safetensors``."""
    if path is not None:
        return Path(path)
    return out_dir / CHECKPOINT_NAME if out_dir else None


def hook_keys(hooks: list[Any]) -> list[tuple[str, Any]]:
    """Checkpoint keys of the hooks: position and class name, so a resumed run matches them up."""
    return [(f"{i}:{type(h).__name__}", h) for i, h in enumerate(hooks)]


def weights_finite(model: nn.Module) -> bool:
    """One host sync (a norm could overflow for finite weights, so test the entries)."""
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())


def rng_state(ctx: DistContext) -> dict[str, Any]:
    """Every process's global RNG states (torch CPU/CUDA, NumPy, Python), gathered on every rank."""
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
    return {"ranks": ctx.all_gather_object(state)}


def set_rng_state(rng: dict[str, Any], rank: int) -> None:
    """Restore this process's share of :func:`rng_state`."""
    state = rng["ranks"][rank]
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    npst = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        ("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["gauss"][0], npst["gauss"][1])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.to(torch.uint8).cpu() for t in state["cuda"]])
