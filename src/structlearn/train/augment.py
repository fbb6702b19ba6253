"""Batch image augmentation in plain torch (torchvision is unusable here, see data.md §4).

Random shift by pad-and-crop: pad each image by ``s`` pixels of background and crop an H×W window at a
per-image random offset in [0, 2s]², i.e. a translation by up to ±s pixels. The whole batch is one pad
and one gather; offsets come from the caller's ``torch.Generator`` so the run stays reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def default_shift(image_shape: tuple[int, int]) -> int:
    """±2 px for images at least 16 px tall, ±1 px for smaller ones, none for 1-D signals (H = 1)."""
    h, _ = image_shape
    if h <= 1:
        return 0
    return 2 if h >= 16 else 1


def random_shift(
    x: torch.Tensor, shift: int, generator: torch.Generator, background: float = 0.0
) -> torch.Tensor:
    """Translate each image of ``x`` (B, C, H, W) by an independent offset in [−shift, shift]².

    Signals with H = 1 (MNIST-1D) are shifted along W only.
    """
    if shift <= 0:
        return x
    b, c, h, w = x.shape
    offsets = torch.randint(0, 2 * shift + 1, (2, b), generator=generator)
    pad_h = shift if h > 1 else 0
    if h == 1:
        offsets[0].zero_()
    padded = F.pad(x, (shift, shift, pad_h, pad_h), value=background)
    rows = (offsets[0][:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = (offsets[1][:, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b)[:, None, None, None]
    chan = torch.arange(c)[None, :, None, None]
    return padded[batch, chan, rows, cols]
