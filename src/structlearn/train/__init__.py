"""Transformer training: the engine (loop, eval, resume, DDP) and atomic checkpoints.

``from structlearn.train import TrainConfig, Trainer`` — names are resolved lazily so that importing
``structlearn.train.checkpoint`` alone stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "structlearn.train.config",
    "Trainer": "structlearn.train.engine",
    "TrainResult": "structlearn.train.engine",
    "Components": "structlearn.train.components",
    "GradientStatsHook": "structlearn.train.hooks",
    "TrainExtension": "structlearn.train.extensions",
    "register_extension": "structlearn.train.extensions",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'structlearn.train' has no attribute {name!r}")
