"""Extension point: ``structlearn train`` flags, optimizer keywords and hooks beyond ``TrainConfig``'s.

An extension is a :class:`TrainExtension` (subclass it and override what you need):

- ``add_arguments(parser)`` adds flags to ``structlearn train`` (use an argument group);
- ``optimizer_kwargs(args)`` returns extra keyword arguments for ``make_optimizer`` (stored in
  ``TrainConfig.optimizer_kwargs``, hence in checkpoints: a resumed run rebuilds the same optimizer);
- ``extras(args)`` returns settings to keep in ``TrainConfig.extras[name]`` (also checkpointed);
- ``hooks(config)`` returns training hooks built from the config (called for fresh and resumed runs,
  and by programmatic users through :func:`extension_hooks`).

The built-in extensions are listed here, explicitly (``BUILTIN_EXTENSIONS``: the spectral step bound's
flags and the stability diagnostics); they live in the training layer, so ``optim`` and
``diagnostics`` never import ``train`` (docs/architecture.md). Code can add its own with
:func:`register_extension`. Flags of an extension must not clash with ``TrainConfig``'s flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from structlearn.diagnostics.stability import StabilityHook
from structlearn.train.config import TrainConfig
from structlearn.train.hooks import BoundLogHook
from structlearn.utils.validation import check_float, check_int

BOUNDED_OPTIMIZERS = ("adamw2", "sgdw2")  # the optimizers of structlearn.optim.spectral_bound

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


def extensions() -> Sequence[TrainExtension]:
    """The built-in extensions, then registered ones (a registered name replaces a built-in)."""
    merged = {ext.name: ext for ext in BUILTIN_EXTENSIONS}
    merged.update(_REGISTERED)
    return tuple(merged.values())


def extension_hooks(config: TrainConfig) -> list[Any]:
    """Hooks every extension builds for ``config`` (the CLI adds them; programmatic users may too)."""
    hooks: list[Any] = []
    for ext in extensions():
        hooks.extend(ext.hooks(config))
    return hooks


class SpectralBoundExtension(TrainExtension):
    """``--tau``, ``--power-iters``, ``--bound-params`` for ``--optim adamw2|sgdw2``; logs the bound."""

    name = "spectral_bound"

    def add_arguments(self, parser: Any) -> None:
        group = parser.add_argument_group("spectral step bound (--optim adamw2 | sgdw2, arXiv 2505.21910)")
        group.add_argument(
            "--tau",
            type=float,
            default=None,
            metavar="X",
            help="largest σ₁(ΔW)/σ₁(W) per step (default 0.02)",
        )
        group.add_argument(
            "--power-iters", type=int, default=None, metavar="N", help="power iterations per step (default 2)"
        )
        group.add_argument(
            "--bound-squarings",
            type=int,
            default=None,
            metavar="S",
            help="Gram squarings of the certified σ₁(ΔW) upper bound (default 4; fewer = cheaper, looser)",
        )
        group.add_argument(
            "--bound-estimate-only",
            action="store_true",
            default=None,
            help="bound with the power-iteration estimate of σ₁(ΔW) only (cheaper; τ may be exceeded)",
        )
        group.add_argument(
            "--bound-params",
            choices=("matrices", "all"),
            default=None,
            help="bounded parameters: matrices (default) or all (biases and norm gains too)",
        )

    def optimizer_kwargs(self, args: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if getattr(args, "tau", None) is not None:
            out["tau"] = check_float("tau", args.tau, positive=True)
        if getattr(args, "power_iters", None) is not None:
            out["power_iters"] = check_int("power_iters", args.power_iters, minimum=1)
        if getattr(args, "bound_params", None) is not None:
            out["bound_params"] = args.bound_params
        if getattr(args, "bound_squarings", None) is not None:
            out["squarings"] = check_int("bound_squarings", args.bound_squarings, minimum=0)
        if getattr(args, "bound_estimate_only", None):
            out["certified"] = False
        return out

    def hooks(self, config: Any) -> list[Any]:
        return [BoundLogHook(config.log_every)] if config.optimizer in BOUNDED_OPTIMIZERS else []


class StabilityExtension(TrainExtension):
    """``structlearn train --stability-every N``: attention/SEC/σ₁ diagnostics every N steps + plot."""

    name = "stability"

    def add_arguments(self, parser: Any) -> None:
        group = parser.add_argument_group("stability diagnostics (arXiv 2505.21910)")
        group.add_argument(
            "--stability-every",
            type=int,
            default=None,
            metavar="N",
            help="log attention entropy/erank, SEC and σ₁(W_qᵀW_k), σ₁ of the weights every N steps "
            "on the probe batch and plot them to stability.png (0 = off)",
        )

    def extras(self, args: Any) -> dict[str, Any]:
        n = getattr(args, "stability_every", None)
        if n is None or n == 0:
            return {}
        return {"every": check_int("stability_every", n, minimum=0)}

    def hooks(self, config: Any) -> list[Any]:
        settings = config.extras.get(self.name)
        return [StabilityHook(None, every=int(settings["every"]))] if settings else []


BUILTIN_EXTENSIONS: tuple[TrainExtension, ...] = (SpectralBoundExtension(), StabilityExtension())
