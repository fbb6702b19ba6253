"""Extension point: other modules add ``structlearn train`` flags, optimizer keywords and hooks.

An extension is a :class:`TrainExtension` (subclass it and override what you need):

- ``add_arguments(parser)`` adds flags to ``structlearn train`` (use an argument group);
- ``optimizer_kwargs(args)`` returns extra keyword arguments for ``make_optimizer`` (stored in
  ``TrainConfig.optimizer_kwargs``, hence in checkpoints: a resumed run rebuilds the same optimizer);
- ``extras(args)`` returns settings to keep in ``TrainConfig.extras[name]`` (also checkpointed);
- ``hooks(config)`` returns training hooks built from the config (called for fresh and resumed runs,
  and by programmatic users through :func:`extension_hooks`).

Discovery without editing the CLI: every module named in ``EXTENSION_MODULES`` that exists and defines
a module attribute ``TRAIN_EXTENSIONS`` (a sequence of extensions) is loaded; code can also call
:func:`register_extension`. Flags of an extension must not clash with ``TrainConfig``'s flags.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structlearn.train.config import TrainConfig

# Modules searched for ``TRAIN_EXTENSIONS``; absent modules are skipped.
EXTENSION_MODULES: tuple[str, ...] = (
    "structlearn.optim.spectral_bound",
    "structlearn.diagnostics.stability",
    "structlearn.diagnostics.attention",
)

_REGISTERED: dict[str, TrainExtension] = {}


class TrainExtension:
    """Base class with no-op defaults; ``name`` keys ``TrainConfig.extras``."""

    name: str = "extension"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this extension's flags."""

    def optimizer_kwargs(self, args: argparse.Namespace) -> dict[str, Any]:
        return {}

    def extras(self, args: argparse.Namespace) -> dict[str, Any]:
        return {}

    def hooks(self, config: TrainConfig) -> list[Any]:
        return []


def register_extension(ext: TrainExtension) -> None:
    """Register an extension (replacing one of the same name)."""
    if not isinstance(ext, TrainExtension):
        raise ValueError(f"expected a TrainExtension, got {type(ext).__name__}")
    _REGISTERED[ext.name] = ext


def unregister_extension(name: str) -> None:
    _REGISTERED.pop(name, None)


def _discover() -> None:
    for module_name in EXTENSION_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # the module (or its package) does not exist yet
            raise
        for ext in getattr(module, "TRAIN_EXTENSIONS", ()):
            _REGISTERED.setdefault(ext.name, ext)


def extensions() -> Sequence[TrainExtension]:
    """All extensions: registered ones plus those found in ``EXTENSION_MODULES``."""
    _discover()
    return tuple(_REGISTERED.values())


def extension_hooks(config: TrainConfig) -> list[Any]:
    """Hooks every extension builds for ``config`` (the CLI adds them; programmatic users may too)."""
    hooks: list[Any] = []
    for ext in extensions():
        hooks.extend(ext.hooks(config))
    return hooks
