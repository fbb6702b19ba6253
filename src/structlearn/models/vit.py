"""Vision Transformer with a configurable normalisation scheme: V-DNT (arXiv 2507.17501) and baselines.

    x₀ = [InputNorm]([x_cls; E·patches(img)] + P)       (patch embedding, class token, learned positions)
    x_N = blocks(x₀)  (bidirectional self-attention; scheme per :mod:`structlearn.nn.block`)
    logits = W_head · [FinalNorm](x_N)[CLS] + b
    loss = mean cross-entropy

Images are (B, C, H, W), or (B, H, W) when ``in_channels == 1``. One-dimensional signals are images of
height 1: MNIST-1D (B, 1, 40) with ``image_size=(1, 40)`` and ``patch_size=4`` gives 10 tokens. An
integer patch size p means p along every side longer than 1 (so (1, p) for signals, (p, p) for images).

Initialisation (spec dnt.md §1.3, timm convention): truncated normal std 0.02 for the patch projection,
linear weights, class token and positions; zero biases; norm gains 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from structlearn.nn.transformer import INIT_STD, Transformer, check_transformer_fields, init_weights
from structlearn.utils.config import DictConfig
from structlearn.utils.validation import check_id_tensor, check_int, id_range_error


def _pair(name: str, value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
        return check_int(f"{name}[0]", value[0], minimum=1), check_int(f"{name}[1]", value[1], minimum=1)
    v = check_int(name, value, minimum=1)
    return v, v


@dataclass(frozen=True)
class ViTConfig(DictConfig):
    """ViT hyper-parameters; ``image_size``/``patch_size`` are normalised to (height, width) pairs."""

    image_size: int | tuple[int, int] = 28
    patch_size: int | tuple[int, int] = 7
    in_channels: int = 1
    n_classes: int = 10
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64
    norm: str = "dnt"
    norm_type: str = "rms"
    dropout: float = 0.0
    activation: str = "gelu"

    def __post_init__(self) -> None:
        H, W = _pair("image_size", self.image_size)
        if isinstance(self.patch_size, list | tuple):
            ph, pw = _pair("patch_size", self.patch_size)
        else:
            p = check_int("patch_size", self.patch_size, minimum=1)
            ph, pw = (p if H > 1 else 1), (p if W > 1 else 1)
        if H % ph or W % pw:
            raise ValueError(f"image size {H}×{W} is not divisible by the patch size {ph}×{pw}")
        object.__setattr__(self, "image_size", (H, W))
        object.__setattr__(self, "patch_size", (ph, pw))
        check_int("in_channels", self.in_channels, minimum=1)
        check_int("n_classes", self.n_classes, minimum=2)
        check_transformer_fields(self)

    @property
    def grid(self) -> tuple[int, int]:
        (H, W), (ph, pw) = self.image_size, self.patch_size  # type: ignore[misc]
        return H // ph, W // pw

    @property
    def n_patches(self) -> int:
        gh, gw = self.grid
        return gh * gw


class ViT(nn.Module):
    """Patch embedding + [CLS] + learned positions → blocks → classifier on the final-norm CLS token."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        if not isinstance(config, ViTConfig):
            raise ValueError(f"config must be a ViTConfig, got {type(config).__name__}")
        self.config = c = config
        self.patch_embed = nn.Conv2d(c.in_channels, c.n_embd, kernel_size=c.patch_size, stride=c.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.n_embd))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.n_patches + 1, c.n_embd))
        self.transformer = Transformer(
            c.n_layer,
            c.n_embd,
            c.n_head,
            c.norm,
            norm_type=c.norm_type,
            causal=False,
            activation=c.activation,
            dropout=c.dropout,
        )
        self.head = nn.Linear(c.n_embd, c.n_classes)
        init_weights(self, self.transformer, truncated=True, scale_residual=False)
        with torch.no_grad():
            for p in (self.cls_token, self.pos_embed):
                nn.init.trunc_normal_(p, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.transformer.blocks

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.dim() == 3 and c.in_channels == 1:
            x = x.unsqueeze(1)
        expected = (c.in_channels, *c.image_size)  # type: ignore[misc]
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"images must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        return x

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images → class logits (B, n_classes) and the mean cross-entropy if ``targets``."""
        x = self._images(x)
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, d)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        h = self.transformer(torch.cat([cls, tokens], dim=1) + self.pos_embed)
        logits = self.head(h[:, 0])
        loss = None
        if targets is not None:
            targets = check_id_tensor(targets, "targets", 1)
            if targets.shape[0] != logits.shape[0]:
                raise ValueError(
                    f"targets has {targets.shape[0]} entries for a batch of {logits.shape[0]} images"
                )
            try:
                loss = F.cross_entropy(logits, targets)
            except IndexError:
                raise id_range_error(targets, "targets", self.config.n_classes, "n_classes") from None
        return logits, loss
