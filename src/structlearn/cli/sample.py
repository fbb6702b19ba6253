"""``structlearn sample CKPT``: generate text from a language-model checkpoint of ``structlearn train``.

Everything needed comes from the checkpoint: the model configuration (``train_config``), the
tokenizer (``vocabulary``) and the weights. Checkpoints are safetensors files whose non-tensor part is
JSON, so loading executes no pickled code (the equivalent of ``torch.load(weights_only=True)``).
``CKPT`` may also be a run folder holding ``checkpoint.safetensors``.

Sampling: autoregressive, the context cropped to the model's block size, logits divided by the
temperature and restricted to the top k (nanoGPT's ``sample.py`` semantics), seeded by ``--seed``.
Numerically safe for any temperature > 0 (a tiny one is greedy decoding: ``GPT.generate``). A char
model never emits its reserved unknown-character id (it would print U+FFFD). The default prompt is a
newline, or the vocabulary's first character when the training split had no newline.

Exit codes: 0 done; 2 bad input (missing or corrupt checkpoint, a checkpoint that is not a language
model's, a prompt with characters outside the vocabulary, a bad number or device), one line on stderr;
141 when the reader of stdout went away (``| head``), quietly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from structlearn.cli import checkpoint_file, one_line_error
from structlearn.utils.seed import TORCH_SEED_MAX


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return v


def _int_at_least(minimum: int, maximum: int | None = None) -> Any:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        if maximum is not None and v > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {v}")
        return v

    parse.__name__ = "integer"
    return parse


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sample",
        help="generate text from a language-model checkpoint",
        description=(
            "Generate text from a checkpoint written by `structlearn train --task lm` (model, tokenizer "
            "and weights are read from it; no pickle). Prints the prompt followed by the sampled text."
        ),
    )
    parser.error = one_line_error(parser)  # type: ignore[method-assign]
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint.safetensors, or the run folder")
    parser.add_argument(
        "--prompt",
        default=None,
        help="text to continue (default: a newline, or the vocabulary's first character if the model "
        "never saw a newline)",
    )
    parser.add_argument(
        "--tokens", type=_int_at_least(0), default=500, metavar="N", help="tokens to generate (default 500)"
    )
    parser.add_argument(
        "--temperature", type=_positive_float, default=0.8, metavar="T", help="softmax temperature (0.8)"
    )
    parser.add_argument(
        "--top-k",
        type=_int_at_least(1),
        default=200,
        metavar="K",
        help="sample among the K most likely tokens (default 200; larger than the vocabulary = all)",
    )
    parser.add_argument("--samples", type=_int_at_least(1), default=1, metavar="N", help="samples (1)")
    parser.add_argument(
        "--seed",
        type=_int_at_least(0, maximum=TORCH_SEED_MAX),
        default=1337,
        metavar="S",
        help="seed, at most 2**64 - 1 (1337)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.set_defaults(func=run_sample)
    return parser


def load_lm(path: str | Path, device: str = "cpu") -> tuple[Any, Any, dict[str, Any]]:
    """(model in eval mode, tokenizer, train config dict) from a ``structlearn train`` LM checkpoint."""
    from structlearn.data.text import tokenizer_from_state
    from structlearn.train.checkpoint import check_state_shapes, load_checkpoint
    from structlearn.train.components import build_model
    from structlearn.train.config import TrainConfig
    from structlearn.train.engine import CHECKPOINT_KIND, resolve_device

    src = checkpoint_file(path)
    ckpt = load_checkpoint(src)
    meta = ckpt.get("meta")
    if not isinstance(meta, dict) or meta.get("kind") != CHECKPOINT_KIND or "train_config" not in ckpt:
        raise ValueError(f"checkpoint {src} is not a structlearn training checkpoint")
    try:
        cfg = TrainConfig.from_dict(ckpt["train_config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {src} has an unreadable configuration ({exc})") from None
    if cfg.task != "lm" or not isinstance(ckpt.get("vocabulary"), dict):
        raise ValueError(f"checkpoint {src} is a {cfg.task!r} model, not a language model")
    # TrainConfig's own check of the name (cpu, cuda, cuda:N or auto), as for `train --device`;
    # torch.device would accept "meta" or fail with a traceback on "tpu".
    dev = resolve_device(cfg.replace(device=device).device)
    tok = tokenizer_from_state(ckpt["vocabulary"])
    model = build_model(cfg, {"vocab_size": tok.vocab_size})
    check_state_shapes(model.state_dict(), ckpt.get("model"), f"checkpoint {src}")
    model.load_state_dict(ckpt["model"])
    return model.to(dev).eval(), tok, cfg.to_dict()


def default_prompt(tok: Any) -> str:
    """A newline, or a char vocabulary's first character when the training split had no newline."""
    return tok.chars[:1] if tok.kind == "char" and "\n" not in tok.chars else "\n"


def encode_prompt(tok: Any, prompt: str) -> list[int]:
    """Prompt ids; a character outside a char vocabulary is a ValueError naming it."""
    if prompt == "":
        raise ValueError("--prompt is empty (give at least one character, or leave it out for the default)")
    if tok.kind == "char":
        unknown = sorted({c for c in prompt if c not in tok.chars})
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise ValueError(
                f"--prompt has {len(unknown)} character(s) outside the model's vocabulary: {shown}"
            )
    return tok.encode(prompt).tolist()


def run_sample(args: argparse.Namespace) -> int:
    import torch

    model, tok, _ = load_lm(args.checkpoint, args.device)
    ids = encode_prompt(tok, default_prompt(tok) if args.prompt is None else args.prompt)
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(args.seed)
    x = torch.tensor([ids], dtype=torch.long, device=device)
    unknown = [tok.unk_id] if tok.kind == "char" else []  # decodes to U+FFFD: never a useful output
    for i in range(args.samples):
        out = model.generate(
            x,
            args.tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            generator=gen,
            suppress_ids=unknown,
        )
        if i:
            print("-" * 40)
        print(tok.decode(out[0].tolist()))
    sys.stdout.flush()
    return 0
