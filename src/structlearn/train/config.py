"""``TrainConfig``: every setting of a training run, validated once, and the CLI's single source of truth.

Each field carries its ``--help`` text in ``metadata["help"]``; ``structlearn train`` generates one flag
per field (``--block-size`` for ``block_size``) with the default shown here. ``None`` defaults that
depend on another field (learning rate and weight decay per optimizer, patch size per dataset) are
stay ``None`` in the config (so ``replace(optimizer="sgdw")`` picks up SGDW's defaults) and are read
through the ``resolved_*`` properties. (Over 350 lines because it is the one declaration of every
training flag: splitting it would declare them twice.)
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from structlearn.data.images import IMAGE_DATASETS as CLASSIFICATION_DATASETS
from structlearn.data.text import TOKENIZERS
from structlearn.models.segmentation import DECODERS as SEG_DECODERS
from structlearn.nn.block import NORM_SCHEMES, resolve_scheme
from structlearn.nn.norms import NORM_TYPES
from structlearn.optim.factory import OPTIMIZERS
from structlearn.utils.config import DictConfig
from structlearn.utils.seed import TORCH_SEED_MAX
from structlearn.utils.validation import check_choice, check_float, check_int

TASKS = ("lm", "image", "segment")
# The classification loaders' names plus the segmentation set (digit glyph mosaics, data.segmentation).
IMAGE_DATASETS = (*CLASSIFICATION_DATASETS, "digit_mosaic")
# Patch size that tiles each dataset's images into 16 (digits, Fashion-MNIST) or 10 (MNIST-1D) tokens.
DEFAULT_PATCH = {"digits": 2, "fashion_mnist": 7, "mnist1d": 4, "digit_mosaic": 4}
# Per-optimizer defaults for --lr / --weight-decay (spec dnt.md §7.1-7.2); other names use AdamW's.
DEFAULT_LR = {"sgdw": 0.3, "sgdw2": 0.3, "muon": 0.02}
DEFAULT_WEIGHT_DECAY = {"sgdw": 5e-4, "sgdw2": 5e-4, "muon": 0.0}
ADAM_LR, ADAM_WEIGHT_DECAY = 1e-3, 0.1
_DEVICE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


def norm_schemes() -> tuple[str, ...]:
    """Preset names of the models' normalization schemes (``structlearn.nn.block.NORM_SCHEMES``)."""
    return tuple(NORM_SCHEMES)


def check_norm_scheme(name: str) -> None:
    """A preset, optionally with ``+switch`` / ``+no_switch`` modifiers (``nn.block.resolve_scheme``)."""
    resolve_scheme(name)


def optimizer_names() -> tuple[str, ...]:
    """Names registered in ``structlearn.optim.factory.OPTIMIZERS``."""
    return tuple(OPTIMIZERS)


# nanoGPT's config/train_shakespeare_char.py on top of its train.py defaults (karpathy/nanoGPT): AdamW
# lr 1e-3, betas (0.9, 0.99), weight decay 0.1, clip 1.0, 100 linear warmup iterations, cosine to
# min_lr 1e-4 at max_iters, eval every 250 iterations on 200 batches; 6 layers × 6 heads × 384, context
# 256, batch 64, dropout 0.2, 5,000 iterations; LayerNorm without bias (norm_type "layer"), Pre-LN.
# The "-cpu" variant is the README's laptop command: 4 × 4 × 128, context 64, batch 12, 2,000
# iterations, dropout 0, 20 eval batches. Differences that remain (docs/dnt.md): the library reserves
# one extra vocabulary id (66 rows, not 65), does not decay embeddings (nanoGPT decays every ≥ 2-D
# tensor), and nanoGPT's warmup ramps (t+1)/(W+1) where ours ramps (t+1)/W.
_NANOGPT_SHAKESPEARE: dict[str, Any] = {
    "task": "lm",
    "corpus": "shakespeare",
    "tokenizer": "char",
    "norm": "preln",
    "norm_type": "layer",
    "optimizer": "adamw",
    "lr": 1e-3,
    "betas": (0.9, 0.99),
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    "warmup_steps": 100,
    "min_lr_frac": 0.1,
    "eval_every": 250,
    "log_every": 10,
}
PRESETS: dict[str, dict[str, Any]] = {
    "nanogpt-shakespeare-char": {
        **_NANOGPT_SHAKESPEARE,
        "n_layer": 6,
        "n_head": 6,
        "n_embd": 384,
        "block_size": 256,
        "batch_size": 64,
        "dropout": 0.2,
        "steps": 5000,
        "eval_batches": 200,
    },
    "nanogpt-shakespeare-char-cpu": {
        **_NANOGPT_SHAKESPEARE,
        "n_layer": 4,
        "n_head": 4,
        "n_embd": 128,
        "block_size": 64,
        "batch_size": 12,
        "dropout": 0.0,
        "steps": 2000,
        "eval_batches": 20,
    },
}


def preset_config(name: str, **overrides: Any) -> TrainConfig:
    """``TrainConfig`` of a named preset (``PRESETS``) with ``overrides`` on top."""
    check_choice("preset", name, tuple(PRESETS))
    return TrainConfig(**{**PRESETS[name], **overrides})


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class TrainConfig(DictConfig):
    """A training run (language model or image classifier); see ``docs/training.md``."""

    task: str = field(
        default="lm",
        metadata=_help("lm: char/byte-level GPT; image: ViT classifier; segment: ViT + segmentation decoder"),
    )
    # --- data
    corpus: str = field(
        default="stdlib",
        metadata=_help(
            "lm corpus: 'stdlib' (Python stdlib sources), 'pydoc' (python3.11-doc), 'shakespeare' "
            "(Tiny Shakespeare, $STRUCTLEARN_SHAKESPEARE or ../shared/data/) or a file/folder"
        ),
    )
    tokenizer: str = field(
        default="char", metadata=_help("lm tokenisation: char (train-split vocabulary) or byte")
    )
    max_bytes: int | None = field(default=None, metadata=_help("read at most this many corpus bytes"))
    dataset: str = field(
        default="digits",
        metadata=_help(
            "image: digits, fashion_mnist or mnist1d; segment: digit_mosaic or a folder (images/, masks/)"
        ),
    )
    train_subset: int | None = field(
        default=None, metadata=_help("image: train on a fixed random subset of this many images")
    )
    decoder: str = field(
        default="depict-sa", metadata=_help("segment: linear, segmenter, depict-sa or depict-ca (issue 13)")
    )
    label_noise: float = field(
        default=0.0, metadata=_help("image: fraction of training labels replaced by random classes (fixed)")
    )
    augment_shift: int | None = field(
        default=None,
        metadata=_help("image: random shift ±N px (pad-and-crop); default 2 for images >= 16 px, else 0"),
    )
    data_seed: int = field(
        default=1234,
        metadata=_help(
            "seed of data choices every run shares: validation batches, train subset, label noise"
        ),
    )
    # --- model
    block_size: int = field(default=128, metadata=_help("lm context length in tokens"))
    patch_size: int | None = field(
        default=None,
        metadata=_help("image patch size; default 2 (digits), 7 (fashion_mnist), 4 (mnist1d and segment)"),
    )
    n_layer: int = field(default=4, metadata=_help("Transformer blocks"))
    n_head: int = field(default=4, metadata=_help("attention heads (must divide --n-embd)"))
    n_embd: int = field(default=128, metadata=_help("model width"))
    norm: str = field(
        default="dnt",
        metadata=_help("normalization scheme: preln, postln, dnt, dnt-full (+switch / +no_switch modifiers)"),
    )
    norm_type: str = field(default="rms", metadata=_help("norm layer: rms (RMSNorm) or layer (LayerNorm)"))
    dropout: float = field(default=0.0, metadata=_help("dropout probability (embeddings, attention, FFN)"))
    # --- optimisation
    optimizer: str = field(default="adamw", metadata=_help("optimizer name (adamw, sgdw, ...)"))
    lr: float | None = field(
        default=None,
        metadata=_help(
            "peak learning rate; default 1e-3 (adamw), 0.3 (sgdw), 0.02 (muon: its hidden matrices)"
        ),
    )
    weight_decay: float | None = field(
        default=None, metadata=_help("decoupled weight decay; default 0.1 (adamw), 5e-4 (sgdw), 0 (muon)")
    )
    embedding_lr_scale: float = field(
        default=1.0,
        metadata=_help(
            "learning rate of the embedding tables (GPT: also the tied LM head) as a multiple of --lr "
            "(not muon)"
        ),
    )
    gain_lr_scale: float = field(
        default=1.0,
        metadata=_help(
            "learning rate of norm gains and the other undecayed non-embedding parameters as a multiple "
            "of --lr (not muon)"
        ),
    )
    momentum: float = field(default=0.9, metadata=_help("SGDW momentum"))
    nesterov: bool = field(default=False, metadata=_help("SGDW: Nesterov momentum (sgdw, sgdw2)"))
    betas: tuple[float, float] = field(default=(0.9, 0.95), metadata=_help("AdamW betas"))
    eps: float = field(default=1e-8, metadata=_help("AdamW epsilon"))
    warmup_steps: int = field(default=0, metadata=_help("linear warmup steps (0 = none)"))
    min_lr_frac: float = field(
        default=0.1, metadata=_help("cosine decay ends at this fraction of the peak lr")
    )
    steps: int = field(default=1000, metadata=_help("optimizer steps"))
    batch_size: int = field(
        default=32, metadata=_help("sequences or images per step (per process under DDP)")
    )
    grad_clip: float | None = field(
        default=1.0, metadata=_help("clip the global gradient norm ('none' = off)")
    )
    grad_accum: int = field(
        default=1,
        metadata=_help(
            "gradient accumulation: N micro-batches of --batch-size per step, each loss scaled 1/N "
            "(= one batch N× larger)"
        ),
    )
    # --- evaluation, logging, checkpoints
    eval_every: int = field(default=100, metadata=_help("evaluate every N steps (and at the end)"))
    eval_batches: int = field(default=20, metadata=_help("lm: fixed validation batches per evaluation"))
    eval_batch_size: int | None = field(
        default=None, metadata=_help("evaluation batch size; default --batch-size")
    )
    eval_full: bool = field(
        default=False,
        metadata=_help(
            "lm: evaluate on the whole validation split (consecutive non-overlapping windows) instead "
            "of --eval-batches random windows"
        ),
    )
    log_every: int = field(default=10, metadata=_help("write a metrics record every N steps"))
    grad_stats_every: int = field(
        default=0, metadata=_help("log gradient statistics every N steps (0 = off)")
    )
    checkpoint_every: int = field(default=0, metadata=_help("checkpoint every N steps (0 = only at the end)"))
    final_checkpoint: bool = field(default=True, metadata=_help("write a checkpoint when training ends"))
    # --- execution
    seed: int = field(default=0, metadata=_help("seed of initialisation, batch order and augmentation"))
    threads: int | None = field(
        default=None, metadata=_help("torch intra-op threads (default: torch's choice)")
    )
    tune_malloc: bool = field(
        default=True,
        metadata=_help("keep freed memory in glibc's heap between steps (no per-step page faults; Linux)"),
    )
    bf16: bool = field(default=False, metadata=_help("bfloat16 autocast for forward and loss"))
    compile: bool = field(
        default=False, metadata=_help("torch.compile the model (falls back to eager with a warning)")
    )
    device: str = field(default="cpu", metadata=_help("cpu, cuda, cuda:N or auto"))
    progress: bool = field(default=True, metadata=_help("show a tqdm progress bar"))
    out_dir: str | None = field(default="train_out", metadata=_help("output folder"))
    # --- extension points (set by structlearn.train.extensions or programmatically)
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"cli": False})
    extras: dict[str, Any] = field(default_factory=dict, metadata={"cli": False})

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        check_choice("tokenizer", self.tokenizer, TOKENIZERS)
        if self.task == "segment" and self.dataset not in IMAGE_DATASETS:  # user data: a folder
            if not all((Path(self.dataset) / sub).is_dir() for sub in ("images", "masks")):
                raise ValueError(
                    f"segment dataset must be digit_mosaic or a folder with images/ and masks/, "
                    f"got {self.dataset!r}"
                )
        else:
            check_choice("dataset", self.dataset, IMAGE_DATASETS)
            if self.task == "segment" and self.dataset == "digits":
                object.__setattr__(self, "dataset", "digit_mosaic")  # the segmentation set (digits glyphs)
            elif self.task != "lm" and (self.task == "segment") != (self.dataset == "digit_mosaic"):
                raise ValueError(
                    "task segment goes with dataset digit_mosaic (or a folder), and digit_mosaic "
                    "only with segment"
                )
        check_choice("decoder", self.decoder, SEG_DECODERS)
        if not isinstance(self.corpus, str) or not self.corpus:
            raise ValueError(f"corpus must be a non-empty string, got {self.corpus!r}")
        for name in ("max_bytes", "train_subset"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_float("label_noise", self.label_noise, nonnegative=True, maximum=1.0)
        check_int("data_seed", self.data_seed, minimum=0)
        check_float("dropout", self.dropout, nonnegative=True, maximum=0.999)
        for name in (
            "block_size",
            "n_layer",
            "n_head",
            "n_embd",
            "steps",
            "batch_size",
            "log_every",
            "grad_accum",
        ):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("eval_every", "grad_stats_every", "checkpoint_every", "warmup_steps"):
            check_int(name, getattr(self, name), minimum=0)
        check_int("seed", self.seed, minimum=0, maximum=TORCH_SEED_MAX)  # else torch's overflow message
        check_int("eval_batches", self.eval_batches, minimum=1)
        if self.eval_batch_size is not None:
            check_int("eval_batch_size", self.eval_batch_size, minimum=1)
        if self.threads is not None:
            check_int("threads", self.threads, minimum=1)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        check_norm_scheme(self.norm)
        check_choice("norm_type", self.norm_type, NORM_TYPES)
        check_choice("optimizer", self.optimizer, optimizer_names())
        if self.augment_shift is not None:
            check_int("augment_shift", self.augment_shift, minimum=0)
        if self.patch_size is not None:
            check_int("patch_size", self.patch_size, minimum=1)
        if self.lr is not None:
            check_float("lr", self.lr, positive=True)
        if self.weight_decay is not None:
            check_float("weight_decay", self.weight_decay, nonnegative=True)
        check_float("momentum", self.momentum, nonnegative=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {self.momentum}")
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be true or false, got {self.nesterov!r}")
        if self.nesterov and (self.optimizer not in ("sgdw", "sgdw2") or self.momentum == 0):
            raise ValueError(
                f"nesterov needs optimizer sgdw or sgdw2 with momentum > 0, got {self.optimizer!r} with "
                f"momentum {self.momentum}"
            )
        for name in ("embedding_lr_scale", "gain_lr_scale"):
            if check_float(name, getattr(self, name), positive=True) != 1.0 and self.optimizer == "muon":
                raise ValueError(f"{name} does not apply to muon (its AdamW part has adam_lr)")
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(0 <= check_float("betas", b) < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        check_float("eps", self.eps, positive=True)
        check_float("min_lr_frac", self.min_lr_frac, nonnegative=True, maximum=1.0)
        if self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps {self.warmup_steps} must be smaller than steps {self.steps}")
        if self.grad_clip is not None:
            check_float("grad_clip", self.grad_clip, positive=True)
        for name in ("bf16", "progress", "final_checkpoint", "eval_full", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {self.device!r}")
        if self.out_dir is not None and (not isinstance(self.out_dir, str) or not self.out_dir):
            raise ValueError(f"out_dir must be a non-empty path or None, got {self.out_dir!r}")
        for name in ("optimizer_kwargs", "extras"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise ValueError(f"{name} must be a dict with string keys, got {value!r}")
            object.__setattr__(self, name, dict(value))

    # --- serialisation (checkpoints, config.json)
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``betas`` as a list, as it reads back from JSON); ``from_dict`` inverts it,
        refusing unknown keys (a checkpoint from another program); ``__post_init__`` re-tuples ``betas``."""
        out = super().to_dict()
        out["betas"] = list(self.betas)
        return out

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @property
    def resolved_lr(self) -> float:
        return float(DEFAULT_LR.get(self.optimizer, ADAM_LR) if self.lr is None else self.lr)

    @property
    def resolved_weight_decay(self) -> float:
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return float(DEFAULT_WEIGHT_DECAY.get(self.optimizer, ADAM_WEIGHT_DECAY))

    @property
    def resolved_patch_size(self) -> int:
        default = DEFAULT_PATCH.get(
            self.dataset, DEFAULT_PATCH["digit_mosaic"]
        )  # a user folder: as the mosaic
        return default if self.patch_size is None else int(self.patch_size)

    @property
    def resolved_eval_batch_size(self) -> int:
        return self.eval_batch_size or self.batch_size

    def resolved(self) -> dict[str, Any]:
        """``to_dict`` with the defaults that depend on other fields filled in (for logs)."""
        out = self.to_dict()
        out.update(
            lr=self.resolved_lr,
            weight_decay=self.resolved_weight_decay,
            patch_size=self.resolved_patch_size,
            eval_batch_size=self.resolved_eval_batch_size,
        )
        return out
