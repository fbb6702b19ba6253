"""Small CNN backbones for CPU-scale ReID (spec segmentation_reid.md §2.1, §9.2).

The reference pipeline uses an ImageNet ResNet-50 (last stride 1) → global pooling → BatchNorm1d with a
frozen zero bias; the test feature is the L2-normalised BN output. Here the same head sits on a small
CNN: ``widths`` stages of 3×3 conv → BN → ReLU (``residual``: two convs with a skip, ResNet's basic
block), 2× max-pooling between stages. Pooling is ``avg`` (SpCL, CACL) or ``gem`` (generalised mean
p = 3, Cluster-Contrast; Radenović et al., TPAMI 2019, arXiv 1711.02512) — the choice users of the
reference code ask about. ``pooling=None`` (the default) means "the method's own": the trainer picks
``gem`` for Cluster-Contrast and ``avg`` otherwise; a bare :class:`ReIDNet` pools by ``avg``. An explicit
value is always honoured.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from structlearn.utils.validation import check_choice, check_float, check_int

POOLINGS = ("avg", "gem")


@dataclass(frozen=True)
class ReIDNetConfig:
    widths: tuple[int, ...] = (32, 64, 64)
    pooling: str | None = None  # None: the method's default (trainer); a bare ReIDNet uses avg
    gem_p: float = 3.0
    residual: bool = False
    in_channels: int = 3

    def __post_init__(self) -> None:
        if not self.widths:
            raise ValueError("widths must name at least one stage")
        for i, w in enumerate(self.widths):
            check_int(f"widths[{i}]", w, minimum=1)
        if self.pooling is not None:
            check_choice("pooling", self.pooling, POOLINGS)
        check_float("gem_p", self.gem_p, positive=True)
        check_int("in_channels", self.in_channels, minimum=1)

    @property
    def feature_dim(self) -> int:
        return self.widths[-1]


class _Stage(nn.Module):
    def __init__(self, c_in: int, c_out: int, residual: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.residual = residual
        if residual:
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.skip = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        if self.residual:
            out = F.relu(self.bn2(self.conv2(out)) + self.skip(x))
        return out


class ReIDNet(nn.Module):
    """CNN → pooling → BN neck. ``forward`` returns (pooled feature, BN feature); embed with
    :meth:`embed` (L2-normalised BN feature)."""

    def __init__(self, config: ReIDNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or ReIDNetConfig()
        c = self.config.in_channels
        stages = []
        for w in self.config.widths:
            stages.append(_Stage(c, w, self.config.residual))
            c = w
        self.stages = nn.ModuleList(stages)
        self.neck = nn.BatchNorm1d(c)
        self.neck.bias.requires_grad_(False)  # BNNeck with a frozen zero bias (Luo et al. 2019)

    def pool(self, fmap: torch.Tensor) -> torch.Tensor:
        if self.config.pooling in (None, "avg"):
            return fmap.mean(dim=(2, 3))
        p = self.config.gem_p
        return fmap.clamp_min(1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.stages) - 1 and min(x.shape[-2:]) >= 2:
                x = F.max_pool2d(x, 2)
        pooled = self.pool(x)
        return pooled, self.neck(pooled)

    def _check_images(self, images: object) -> None:
        """One-line ValueError for what torch would report as a RuntimeError/TypeError deep inside."""
        want = f"(N, {self.config.in_channels}, H, W)"
        if not isinstance(images, torch.Tensor):
            raise ValueError(f"images must be a torch.Tensor {want}, got {type(images).__name__}")
        if images.dim() != 4 or images.shape[1] != self.config.in_channels:
            raise ValueError(f"images must have shape {want}, got {tuple(images.shape)}")
        if images.numel() == 0:
            raise ValueError(f"images must be non-empty, got shape {tuple(images.shape)}")
        dtype = self.neck.weight.dtype
        if images.dtype != dtype:  # e.g. uint8 pixels: scale to [0, 1] floats first
            raise ValueError(f"images must have dtype {dtype} (the model's), got {images.dtype}")

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
        """L2-normalised BN features of ``images`` (N, C, H, W), evaluation mode, in batches."""
        self._check_images(images)
        was = self.training
        self.eval()
        out = torch.cat(
            [F.normalize(self(images[i : i + batch])[1], dim=1) for i in range(0, len(images), batch)]
        )
        self.train(was)
        return out


class Predictor(nn.Module):
    """CACL's predictor G on branch 1: Linear → BN (frozen bias) → L2, applied to the pooled feature."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.bn(self.fc(x)), dim=1)


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma replicated to three channels (CACL's colour-invariant view)."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device)
    g = torch.einsum("bchw,c->bhw", images, w)[:, None]
    return g.expand(-1, images.shape[1], -1, -1)
