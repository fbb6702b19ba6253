"""The block stack shared by GPT and ViT: x₀ = [InputNorm](embeddings), N blocks, [FinalNorm].

InputNorm (DNT, arXiv 2507.17501, §3.1) removes the uncontrolled ‖x₀‖ that every later residual
stream norm ‖x_l‖ ≈ √(‖x₀‖² + Σ_i ‖f_i‖²) carries. The final norm before the head is not stated in the
paper; it is kept (spec dnt.md §1.3) except in ``postln``, whose last block already ends in a norm.

:func:`init_weights` implements the backbone initialisations of spec §1.3: normal (GPT) or truncated
normal (ViT) with std 0.02 for every Linear/Conv/Embedding weight, zero biases, norm gains 1, and
optionally the nanoGPT scaling 0.02/√(2·n_layer) for the residual output projections W_o and W_2.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from structlearn.nn.block import ACTIVATIONS, Block, NormScheme, resolve_scheme
from structlearn.nn.norms import DEFAULT_EPS, NORM_TYPES, make_norm
from structlearn.utils.validation import check_choice, check_float, check_int

INIT_STD = 0.02


def check_transformer_fields(cfg: Any) -> None:
    """Validate the fields every model config shares: depth, width, heads, norm scheme and type,
    dropout, activation (one-line ValueErrors; used by ``GPTConfig`` and ``ViTConfig``)."""
    check_int("n_layer", cfg.n_layer, minimum=1)
    check_int("n_head", cfg.n_head, minimum=1)
    check_int("n_embd", cfg.n_embd, minimum=1)
    if cfg.n_embd % cfg.n_head:
        raise ValueError(f"n_embd ({cfg.n_embd}) must be divisible by n_head ({cfg.n_head})")
    resolve_scheme(cfg.norm)
    check_choice("norm_type", cfg.norm_type, NORM_TYPES)
    check_float("dropout", cfg.dropout, nonnegative=True, maximum=0.999)
    check_choice("activation", cfg.activation, ACTIVATIONS)


class Transformer(nn.Module):
    """InputNorm → dropout → ``n_layer`` :class:`Block` → FinalNorm, on (B, T, n_embd)."""

    def __init__(
        self,
        n_layer: int,
        n_embd: int,
        n_head: int,
        scheme: str | NormScheme = "dnt",
        *,
        norm_type: str = "rms",
        causal: bool = False,
        activation: str = "gelu",
        dropout: float = 0.0,
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        check_int("n_layer", n_layer, minimum=1)
        self.scheme = resolve_scheme(scheme)
        self.input_norm = make_norm(norm_type, n_embd, eps) if self.scheme.input_norm else nn.Identity()
        self.blocks = nn.ModuleList(
            Block(
                n_embd,
                n_head,
                self.scheme,
                norm_type=norm_type,
                causal=causal,
                activation=activation,
                dropout=dropout,
                eps=eps,
            )
            for _ in range(n_layer)
        )
        self.final_norm = make_norm(norm_type, n_embd, eps) if self.scheme.final_norm else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: embeddings (already summed with positions), before InputNorm."""
        x = self.drop(self.input_norm(x))
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)

    def residual_projections(self) -> list[nn.Linear]:
        return [p for b in self.blocks for p in b.residual_projections()]


@torch.no_grad()
def init_weights(
    model: nn.Module,
    trunk: Transformer,
    *,
    truncated: bool = False,
    scale_residual: bool = True,
    std: float = INIT_STD,
) -> None:
    """Backbone initialisation (spec §1.3); norm gains keep their init of 1."""

    def fill(w: torch.Tensor, s: float) -> None:
        if truncated:
            nn.init.trunc_normal_(w, std=s, a=-2 * s, b=2 * s)
        else:
            nn.init.normal_(w, std=s)

    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Embedding):
            fill(m.weight, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
    if scale_residual:
        n_layer = len(trunk.blocks)
        for lin in trunk.residual_projections():
            fill(lin.weight, std / math.sqrt(2 * n_layer))
