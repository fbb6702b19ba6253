"""Semantic segmentation: a ViT encoder + one of four decoders (DEPICT, arXiv 2411.03033; spec §1).

    Z = ViT(img) without [CLS]                         (B, N, d) patch tokens, N = (H/p)(W/p)
    masks = decoder(Z)                                  (B, C, H/p, W/p)
    logits = bilinear_upsample(masks, (H, W));  loss = CE(logits, y, ignore_index=255)

Decoders (``SegConfig.decoder``):
- ``linear``: one Linear(d, C) per patch token.
- ``segmenter``: Segmenter's mask transformer (Strudel et al., arXiv 2105.05633): proj_dec, 2 pre-LN
  blocks (qkv, MLP 4d, d/64 heads), class embeddings, d×d proj_patch / proj_classes, cosine masks.
- ``depict-sa`` (default): [Z; Q_c] through ``n_layers`` MSSA steps (:mod:`structlearn.nn.depict`), LN.
- ``depict-ca``: MSSA on patches, LN; then ``n_ca_layers`` MSCA steps on the class embeddings, LN.
Mask rule shared by the last three: M = LN_C( norm(Z) · norm(Q_c)ᵀ ) (row-wise L2 norms, LN over classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from structlearn.models.vit import ViT, ViTConfig
from structlearn.nn.depict import SubspaceAttention
from structlearn.utils.config import DictConfig
from structlearn.utils.validation import check_id_tensor, check_int, id_range_error

IGNORE_INDEX = 255
DECODERS = ("linear", "segmenter", "depict-sa", "depict-ca")


@dataclass(frozen=True)
class SegConfig(DictConfig):
    """Decoder hyper-parameters; the encoder is a :class:`ViTConfig` (its ``n_classes`` is unused)."""

    n_classes: int = 11
    decoder: str = "depict-sa"
    n_layers: int = 3  # MSSA layers (DEPICT)
    seg_blocks: int = 2  # transformer blocks of Segmenter's mask transformer (spec §1.3: 2)
    n_head: int = 2
    head_dim: int = 32  # p for MSSA
    n_ca_layers: int = 3  # MSCA layers (DEPICT-CA)
    ca_head_dim: int = 16  # p for MSCA
    seg_dropout: float = 0.1  # Segmenter blocks only; DEPICT uses none

    def __post_init__(self) -> None:
        check_int("n_classes", self.n_classes, minimum=2)
        if self.n_classes > IGNORE_INDEX:
            raise ValueError(f"n_classes must be at most {IGNORE_INDEX} (255 is the ignore index)")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        for name in ("n_layers", "seg_blocks", "n_head", "head_dim", "n_ca_layers", "ca_head_dim"):
            check_int(name, getattr(self, name), minimum=1)
        if not 0.0 <= float(self.seg_dropout) < 1.0:
            raise ValueError(f"seg_dropout must be in [0, 1), got {self.seg_dropout!r}")


def cosine_masks(patches: torch.Tensor, classes: torch.Tensor, mask_norm: nn.LayerNorm) -> torch.Tensor:
    """M = LN_C(norm(Z) norm(Q)ᵀ): (B, N, d), (B, C, d) → (B, N, C)."""
    return mask_norm(F.normalize(patches, dim=-1) @ F.normalize(classes, dim=-1).transpose(1, 2))


class LinearDecoder(nn.Module):
    def __init__(self, dim: int, c: SegConfig) -> None:
        super().__init__()
        self.head = nn.Linear(dim, c.n_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)


class _Block(nn.Module):
    """Standard pre-LN Transformer block (separate qkv, MLP 4d, GELU), as in Segmenter/timm."""

    def __init__(self, dim: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, T, 3, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x + F.dropout(self.proj(a.transpose(1, 2).reshape(B, T, d)), self.dropout, self.training)
        return x + self.mlp(self.norm2(x))


class SegmenterDecoder(nn.Module):
    """Segmenter's mask transformer (arXiv 2105.05633 §3.2; spec §1.3 'Differences')."""

    def __init__(self, dim: int, c: SegConfig) -> None:
        super().__init__()
        self.n_classes = c.n_classes
        self.proj_dec = nn.Linear(dim, dim)
        # d/64 heads of width 64 as Segmenter; for widths that 64 does not divide, the most heads ≤ d/64
        # that divide d (224 → 2 heads of 112), so every width the encoder accepts works.
        heads = max(h for h in range(1, max(1, dim // 64) + 1) if dim % h == 0)
        self.blocks = nn.ModuleList(_Block(dim, heads, c.seg_dropout) for _ in range(c.seg_blocks))
        self.cls_emb = nn.Parameter(torch.randn(1, c.n_classes, dim) * 0.02)
        self.proj_patch = nn.Parameter(torch.randn(dim, dim) * dim**-0.5)
        self.proj_classes = nn.Parameter(torch.randn(dim, dim) * dim**-0.5)
        self.decoder_norm, self.mask_norm = nn.LayerNorm(dim), nn.LayerNorm(c.n_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.proj_dec(z), self.cls_emb.expand(z.shape[0], -1, -1)], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.decoder_norm(x)
        patches, classes = x[:, : -self.n_classes], x[:, -self.n_classes :]
        return cosine_masks(patches @ self.proj_patch, classes @ self.proj_classes, self.mask_norm)


class DepictDecoder(nn.Module):
    """DEPICT-SA (``cross=False``) or DEPICT-CA (``cross=True``), spec §1.3."""

    def __init__(self, dim: int, c: SegConfig, cross: bool) -> None:
        super().__init__()
        self.n_classes, self.cross = c.n_classes, cross
        self.cls_emb = nn.Parameter(torch.empty(1, c.n_classes, dim))
        nn.init.trunc_normal_(self.cls_emb, std=0.02, a=-0.04, b=0.04)
        self.sa = nn.ModuleList(SubspaceAttention(dim, c.n_head, c.head_dim) for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(dim)
        self.ca = nn.ModuleList(
            SubspaceAttention(dim, c.n_head, c.ca_head_dim) for _ in range(c.n_ca_layers if cross else 0)
        )
        self.ca_norm = nn.LayerNorm(dim) if cross else None
        self.mask_norm = nn.LayerNorm(c.n_classes)

    def refine(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Refined patch tokens (B, N, d) and class embeddings (B, C, d) before the mask step."""
        cls = self.cls_emb.expand(z.shape[0], -1, -1)
        if not self.cross:
            x = torch.cat([z, cls], dim=1)
            for layer in self.sa:
                x = layer(x)
            x = self.norm(x)
            return x[:, : -self.n_classes], x[:, -self.n_classes :]
        for layer in self.sa:
            z = layer(z)
        z = self.norm(z)
        for layer in self.ca:
            cls = layer(z, queries=cls)
        assert self.ca_norm is not None
        return z, self.ca_norm(cls)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return cosine_masks(*self.refine(z), self.mask_norm)


def decoder_flops(c: SegConfig, dim: int, n_tokens: int) -> int:
    """Analytic forward FLOPs of the decoder per image (2 per multiply-add; matmuls only)."""
    N, C, d = n_tokens, c.n_classes, dim
    if c.decoder == "linear":
        return 2 * N * d * C
    mask = 2 * N * C * d  # cosine step
    if c.decoder == "segmenter":
        T = N + C
        block = 2 * T * d * (3 * d + d + 8 * d) + 4 * T * T * d  # qkv, proj, MLP; QKᵀ and AV
        return 2 * N * d * d + c.seg_blocks * block + 2 * (N + C) * d * d + mask

    def sub(tq: int, tk: int, hp: int, self_attn: bool) -> int:
        # projections (keys once, queries again if distinct), QKᵀ, AV, output projection
        return 2 * tk * d * hp + (0 if self_attn else 2 * tq * d * hp) + 4 * tq * tk * hp + 2 * tq * hp * d

    hp = c.n_head * c.head_dim
    if c.decoder == "depict-sa":
        return c.n_layers * sub(N + C, N + C, hp, True) + mask
    hq = c.n_head * c.ca_head_dim
    return c.n_layers * sub(N, N, hp, True) + c.n_ca_layers * sub(C, N, hq, False) + mask


class SegModel(nn.Module):
    """ViT encoder (patch tokens, CLS dropped) + decoder + bilinear upsampling; CE with ignore index 255."""

    def __init__(self, encoder: ViTConfig, config: SegConfig) -> None:
        super().__init__()
        if not isinstance(encoder, ViTConfig) or not isinstance(config, SegConfig):
            raise ValueError("SegModel needs a ViTConfig and a SegConfig")
        self.config, self.encoder_config = config, encoder
        self.encoder = ViT(encoder)
        self.encoder.head = nn.Identity()  # the classifier is unused: tokens go to the decoder
        d = encoder.n_embd
        if config.decoder == "linear":
            self.decoder: nn.Module = LinearDecoder(d, config)
        elif config.decoder == "segmenter":
            self.decoder = SegmenterDecoder(d, config)
        else:
            self.decoder = DepictDecoder(d, config, cross=config.decoder == "depict-ca")

    def decoder_params(self) -> int:
        return sum(p.numel() for p in self.decoder.parameters())

    def decoder_flops(self) -> int:
        return decoder_flops(self.config, self.encoder_config.n_embd, self.encoder_config.n_patches)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder patch tokens (B, N, d), [CLS] removed."""
        vit = self.encoder
        x = vit._images(x)
        t = vit.patch_embed(x).flatten(2).transpose(1, 2)
        h = vit.transformer(torch.cat([vit.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + vit.pos_embed)
        return h[:, 1:]

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images (B, ch, H, W) → logits (B, C, H, W) and CE (ignore 255) if ``targets`` (B, H, W)."""
        H, W = self.encoder_config.image_size  # type: ignore[misc]
        gh, gw = self.encoder_config.grid
        masks = self.decoder(self.tokens(x))  # (B, N, C)
        masks = masks.transpose(1, 2).reshape(masks.shape[0], -1, gh, gw)
        logits = F.interpolate(masks, size=(H, W), mode="bilinear", align_corners=False)
        loss = None
        if targets is not None:
            targets = check_id_tensor(targets, "targets", 3, "class ids (255 = ignore)")
            if targets.shape != (logits.shape[0], H, W):
                raise ValueError(
                    f"targets must have shape ({logits.shape[0]}, {H}, {W}), got {tuple(targets.shape)}"
                )
            try:
                loss = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
            except IndexError:
                C = self.config.n_classes
                raise id_range_error(targets, "targets", C, "n_classes", ignore=IGNORE_INDEX) from None
        return logits, loss
