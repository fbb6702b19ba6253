"""The Transformer block whose normalisation scheme is a config value (DNT, arXiv 2507.17501, §3–4).

Forward pass of one block (spec dnt.md §1.3; every bracketed norm is a switch of :class:`NormScheme`):

    h = [PreNorm_attn](x)
    a = W_o · MHA([QKNorm] on q, k)(h)
    x = [PostNorm_attn]( x + [MidNorm_attn](a) )
    f = W_2 · act(W_1 · [PreNorm_ffn](x))
    x = [PostNorm_ffn]( x + [MidNorm_ffn](f) )

and around the stack (see :mod:`structlearn.nn.transformer`): x₀ = [InputNorm](embed + pos) and
y = Head([FinalNorm](x_N)).

Named presets (the paper's ablation settings S1–S5, Table "ablation", all trained with mSGDW):

| preset      | = | norms                                                                  |
|-------------|---|------------------------------------------------------------------------|
| ``preln``   | S1 | PreNorm before attention and FFN, final norm (the standard baseline)  |
| ``s2``      | S2 | S1 + QKNorm                                                           |
| ``s3``      | S3 | S2 + InputNorm                                                        |
| ``dnt-full``| S4 | InputNorm + PreNorm (attn, FFN) + QKNorm + MidNorm (both sublayers)   |
| ``dnt``     | S5 | InputNorm + PreNorm (attn only) + QKNorm + MidNorm — the paper's DNT  |
| ``postln``  | —  | original Post-LN: norm after each residual add, no final norm         |

A scheme string may add or remove switches after a preset: ``"preln+qk_norm"``, ``"dnt+no_mid_norm"``.

FFN: bias-free, hidden width 4·d, GELU by default because both backbones the paper modifies (nanoGPT
and timm's ViT) use GELU and the paper changes only the norms. ``activation="relu"`` is offered
because a bias-free ReLU FFN is exactly positively homogeneous, W_2 relu(W_1 c·x) = c·W_2 relu(W_1 x),
so with MidNorm the FFN branch is exactly invariant to the per-token scale of its input — the
argument (spec §1.3) for why S5 can drop the FFN PreNorm; with GELU it holds only approximately.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from structlearn.nn.attention import MultiHeadAttention
from structlearn.nn.norms import DEFAULT_EPS, RMSNorm, add_rms_norm, make_norm
from structlearn.utils.validation import check_choice, check_int

ACTIVATIONS: tuple[str, ...] = ("gelu", "relu")
MLP_RATIO = 4


@dataclass(frozen=True)
class NormScheme:
    """Where the norms sit. Each switch is independent so an ablation is one config axis."""

    input_norm: bool = False
    pre_norm_attn: bool = True
    qk_norm: bool = False
    mid_norm: bool = False
    pre_norm_ffn: bool = True
    post_norm: bool = False
    final_norm: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise ValueError(f"NormScheme.{f.name} must be a bool, got {getattr(self, f.name)!r}")

    @property
    def enabled(self) -> tuple[str, ...]:
        """Names of the switches that are on, in forward order."""
        return tuple(f.name for f in dataclasses.fields(self) if getattr(self, f.name))

    def count_norms(self, n_layer: int) -> int:
        """Number of norm layers a stack of ``n_layer`` blocks has (QKNorm counts q and k)."""
        per_block = (
            self.pre_norm_attn + 2 * self.qk_norm + 2 * self.mid_norm + self.pre_norm_ffn + 2 * self.post_norm
        )
        return n_layer * per_block + self.input_norm + self.final_norm


NORM_SCHEMES: dict[str, NormScheme] = {
    "preln": NormScheme(),
    "postln": NormScheme(pre_norm_attn=False, pre_norm_ffn=False, post_norm=True, final_norm=False),
    "s2": NormScheme(qk_norm=True),
    "s3": NormScheme(qk_norm=True, input_norm=True),
    "dnt-full": NormScheme(input_norm=True, qk_norm=True, mid_norm=True),
    "dnt": NormScheme(input_norm=True, qk_norm=True, mid_norm=True, pre_norm_ffn=False),
}
# The paper's setting names as aliases.
NORM_SCHEMES |= {"s1": NORM_SCHEMES["preln"], "s4": NORM_SCHEMES["dnt-full"], "s5": NORM_SCHEMES["dnt"]}

_SWITCHES = tuple(f.name for f in dataclasses.fields(NormScheme))


def resolve_scheme(spec: str | NormScheme) -> NormScheme:
    """A :class:`NormScheme` from a preset name, optionally followed by ``+switch`` / ``+no_switch``."""
    if isinstance(spec, NormScheme):
        return spec
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"norm scheme must be a non-empty string, got {spec!r}")
    base, *mods = spec.split("+")
    check_choice("norm scheme", base, NORM_SCHEMES)
    changes: dict[str, bool] = {}
    for mod in mods:
        name, value = (mod[3:], False) if mod.startswith("no_") else (mod, True)
        if name not in _SWITCHES:
            raise ValueError(
                f"unknown norm switch {mod!r} in scheme {spec!r}; switches: {', '.join(_SWITCHES)}"
                " (prefix no_ to turn one off)"
            )
        changes[name] = value
    return dataclasses.replace(NORM_SCHEMES[base], **changes)


class FeedForward(nn.Module):
    """f = W_2 · act(W_1 x), bias-free, hidden width ``ratio · n_embd``."""

    def __init__(self, n_embd: int, ratio: int = MLP_RATIO, activation: str = "gelu") -> None:
        super().__init__()
        check_int("mlp ratio", ratio, minimum=1)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.w1 = nn.Linear(n_embd, ratio * n_embd, bias=False)
        self.w2 = nn.Linear(ratio * n_embd, n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.w1(x)
        h = F.gelu(h) if self.activation == "gelu" else F.relu(h)
        return self.w2(h)


def _norm_or_identity(on: bool, norm_type: str, dim: int, eps: float) -> nn.Module:
    return make_norm(norm_type, dim, eps) if on else nn.Identity()


class Block(nn.Module):
    """One Transformer block; disabled norms are ``nn.Identity`` so the forward has no branches."""

    def __init__(
        self,
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
        self.scheme = resolve_scheme(scheme)
        s = self.scheme  # dropout is validated once, by MultiHeadAttention below (before its use here)

        def norm(on: bool) -> nn.Module:
            return _norm_or_identity(on, norm_type, n_embd, eps)

        self.pre_attn = norm(s.pre_norm_attn)
        self.attn = MultiHeadAttention(
            n_embd, n_head, causal=causal, qk_norm=s.qk_norm, dropout=dropout, eps=eps
        )
        self.mid_attn = norm(s.mid_norm)
        self.post_attn = norm(s.post_norm)
        self.pre_ffn = norm(s.pre_norm_ffn)
        self.ffn = FeedForward(n_embd, MLP_RATIO, activation)
        self.mid_ffn = norm(s.mid_norm)
        self.post_ffn = norm(s.post_norm)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.post_attn(self._residual(x, self.attn(self.pre_attn(x)), self.mid_attn))
        return self.post_ffn(self._residual(x, self.ffn(self.pre_ffn(x)), self.mid_ffn))

    def _residual(self, x: torch.Tensor, branch: torch.Tensor, mid: nn.Module) -> torch.Tensor:
        """x + Dropout(MidNorm(branch)); an RMS MidNorm without active dropout is fused with the add."""
        if isinstance(mid, RMSNorm) and (self.drop.p == 0 or not self.training):
            return add_rms_norm(x, branch, mid.weight, mid.eps)
        return x + self.drop(mid(branch))

    def residual_projections(self) -> list[nn.Linear]:
        """The output projections that write into the residual stream (W_o, W_2)."""
        return [self.attn.wo, self.ffn.w2]
