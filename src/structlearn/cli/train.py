"""``structlearn train``: train a char/byte-level GPT (``--task lm``) or a ViT (``--task image``).

Flags are generated from ``TrainConfig``'s fields (``block_size`` → ``--block-size``) with its defaults
and help texts, so the config stays the one source of truth; extensions
(``structlearn.train.extensions``) add their own. ``--resume CKPT`` continues a run from its checkpoint
(or from the run folder's ``checkpoint.safetensors``): the configuration comes from the checkpoint, and
flags given explicitly may only change what does not alter the trajectory (output folder, steps,
threads, device, logging/eval/checkpoint intervals). Every output file is checked writable before
any work (a directory named ``curves.png`` fails the run at once, not after training).

Exit codes: 0 done, 1 training diverged (non-finite loss; the last good checkpoint is kept), 2 bad input
or an OS error such as an unwritable --out or a full disk (one line on stderr naming the path and the
cause; nothing written, or the previous checkpoint kept), 130 / 143 stopped by SIGINT / SIGTERM (after
the current step: a checkpoint is saved, result.json has status "interrupted", and the message says
where to --resume from or that no checkpoint was saved). A second run on an --out folder in use exits 2.
DDP: ``torchrun --standalone --nproc_per_node=2 -m structlearn.cli
train ...`` (gloo on CPU, NCCL on CUDA); rank 0 alone prints and writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from structlearn.cli import checkpoint_file, one_line_error
from structlearn.train.config import PRESETS, TrainConfig, norm_schemes, optimizer_names, preset_config
from structlearn.train.extensions import extension_hooks, extensions

# Flag spellings that differ from the field name (first = primary).
ALIASES: dict[str, tuple[str, ...]] = {
    "out_dir": ("--out", "--out-dir"),
    "optimizer": ("--optimizer", "--optim"),
}


class _Unset:
    """Default of every generated flag, so explicitly given flags can be told apart."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


def _none_or(kind: type) -> Any:
    def parse(text: str) -> Any:
        if text.lower() in ("none", "off", "null"):
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__} or 'none', got {text!r}") from None

    parse.__name__ = f"{kind.__name__} or none"
    return parse


def _field_kwargs(f: dataclasses.Field[Any]) -> dict[str, Any]:
    """argparse keyword arguments for one TrainConfig field (its annotation is a string)."""
    ann = str(f.type).replace(" ", "")
    default = f.default if f.default is not dataclasses.MISSING else None
    help_text = f.metadata.get("help", "")
    if f.name == "norm":
        help_text = f"normalization scheme: {', '.join(norm_schemes())} (+switch / +no_switch modifiers)"
    elif f.name == "optimizer":
        help_text = f"optimizer: {', '.join(optimizer_names())}"
    if ann == "bool":
        return {"action": argparse.BooleanOptionalAction, "help": f"{help_text} (default: {default})"}
    shown = "torch's choice" if f.name == "threads" and default is None else default
    kw: dict[str, Any] = {"help": f"{help_text} (default: {shown})" if default is not None else help_text}
    if ann.startswith("tuple[float"):
        kw.update(type=float, nargs=2, metavar=("B1", "B2"))
    elif ann.startswith("int"):
        kw.update(type=_none_or(int) if "None" in ann else int, metavar="N")
    elif ann.startswith("float"):
        kw.update(type=_none_or(float) if "None" in ann else float, metavar="X")
    else:
        kw.update(type=str, metavar=f.name.split("_")[-1].upper())
    return kw


def cli_fields() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli", True)]


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a GPT on text (lm) or a ViT on images (image)",
        description=(
            "Train a char/byte-level GPT on a text corpus (--task lm) or a ViT classifier (--task image). "
            "Writes config.json, metrics.jsonl, curves.png, checkpoint.safetensors and result.json "
            "under --out."
        ),
    )
    parser.error = one_line_error(parser)  # type: ignore[method-assign] - one-line errors, exit 2
    groups = {
        "task": parser.add_argument_group("task and data"),
        "block_size": parser.add_argument_group("model"),
        "optimizer": parser.add_argument_group("optimisation"),
        "eval_every": parser.add_argument_group("evaluation, logging, checkpoints"),
        "seed": parser.add_argument_group("execution"),
    }
    group = groups["task"]
    group.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help=(
            "start from a named configuration; flags given explicitly override it. "
            "nanogpt-shakespeare-char = nanoGPT's config/train_shakespeare_char.py (6L/6H/384, ctx 256, "
            "batch 64, dropout 0.2, AdamW 1e-3, betas 0.9/0.99, wd 0.1, clip 1, warmup 100, cosine to "
            "1e-4 at 5000 steps, eval every 250); nanogpt-shakespeare-char-cpu = its README CPU run "
            "(4L/4H/128, ctx 64, batch 12, 2000 steps, dropout 0)"
        ),
    )
    for f in cli_fields():
        group = groups.get(f.name, group)
        flags = ALIASES.get(f.name, (f"--{f.name.replace('_', '-')}",))
        group.add_argument(*flags, dest=f.name, default=UNSET, **_field_kwargs(f))
    run = parser.add_argument_group("resume")
    run.add_argument(
        "--resume",
        metavar="CKPT",
        default=None,
        help="continue from this checkpoint (or the run folder holding checkpoint.safetensors)",
    )
    run.add_argument(
        "--stop-after",
        metavar="N",
        type=int,
        default=None,
        help="stop after step N (checkpointing) to --resume later",
    )
    for ext in extensions():
        ext.add_arguments(parser)
    parser.set_defaults(func=run_train)
    return parser


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, dict[str, Any] | None]:
    """The run's config (fresh, or the checkpoint's with explicit overrides) and the loaded checkpoint.

    Extensions see ``args`` with every config flag filled in (the explicit value, else the
    checkpoint's or the default), e.g. ``args.optimizer`` is always a name.
    """
    explicit = {
        f.name: getattr(args, f.name) for f in cli_fields() if getattr(args, f.name, UNSET) is not UNSET
    }
    if "betas" in explicit:
        explicit["betas"] = tuple(explicit["betas"])
    ckpt = None
    preset = getattr(args, "preset", None)
    if preset is not None and args.resume is not None:
        raise ValueError("--preset starts a new run; --resume takes its configuration from the checkpoint")
    if args.resume is None:
        if preset is not None:
            _check_preset_warmup(preset, explicit)
        base = preset_config(preset, **explicit) if preset is not None else TrainConfig(**explicit)
    else:
        from structlearn.train.checkpoint import load_checkpoint

        src = checkpoint_file(args.resume)
        ckpt = load_checkpoint(src)
        if not isinstance(ckpt.get("train_config"), dict):
            raise ValueError(f"checkpoint {src} is not a structlearn training checkpoint")
        base = TrainConfig.from_dict(ckpt["train_config"]).replace(**explicit)
    filled = argparse.Namespace(**{**vars(args), **{f.name: getattr(base, f.name) for f in cli_fields()}})
    opt_kwargs: dict[str, Any] = dict(base.optimizer_kwargs)
    extras: dict[str, Any] = dict(base.extras)
    for ext in extensions():
        opt_kwargs.update(ext.optimizer_kwargs(filled))
        value = ext.extras(filled)
        if value:
            extras[ext.name] = {**extras.get(ext.name, {}), **value}
    return base.replace(optimizer_kwargs=opt_kwargs, extras=extras), ckpt


def _check_preset_warmup(preset: str, explicit: dict[str, Any]) -> None:
    """TrainConfig's warmup < steps check, saying that the warmup came from the preset and how to
    change it (``--preset nanogpt-shakespeare-char-cpu --steps 2`` would name neither)."""
    warmup, steps = PRESETS[preset].get("warmup_steps"), explicit.get("steps")
    if "warmup_steps" in explicit or not isinstance(warmup, int) or not isinstance(steps, int):
        return
    if 0 < steps <= warmup:
        raise ValueError(
            f"--preset {preset} sets --warmup-steps {warmup}, which must be smaller than --steps {steps}; "
            f"give --warmup-steps below {steps} (e.g. --warmup-steps 0) or more --steps"
        )


def summary_lines(config: TrainConfig, result: Any) -> list[str]:
    lines = [result.message if result.status != "diverged" else f"diverged: {result.message}"]
    metrics = []
    for name, value in (
        ("train loss", result.final_train_loss),
        ("val loss", result.final_val_loss),
        ("test loss", result.final_test_loss),
        ("test acc", result.final_test_acc),
    ):
        if value is not None:
            metrics.append(f"{name} {value:.4f}")
    if metrics:
        lines.append(", ".join(metrics))
    lines.append(
        f"{result.throughput:,.0f} {result.throughput_unit}, wall {result.wall_s:.1f} s, "
        f"peak +{result.peak_mb:.0f} MiB, "
        f"{result.n_params:,} params, optimizer state {result.optimizer_state_bytes / 2**20:.2f} MiB"
    )
    if config.out_dir is not None:
        lines.append(f"outputs in {config.out_dir}")
    return lines


def run_train(args: argparse.Namespace) -> int:
    from structlearn.train.engine import Trainer

    config, ckpt = config_from_args(args)
    # The checkpoint read above for the config (it remembers its path) is the one resumed from: read once.
    trainer = Trainer(config, hooks=extension_hooks(config), resume=ckpt)
    result = trainer.fit(stop_after=args.stop_after, handle_signals=True)
    if trainer.is_main:
        out = sys.stdout if result.ok else sys.stderr
        for line in summary_lines(config, result):
            print(line, file=out)
    if result.status == "interrupted":
        return 128 + int(trainer.interrupted_by or 15)  # 130 SIGINT, 143 SIGTERM (shell convention)
    return 0 if result.ok else 1
