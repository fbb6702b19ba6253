"""Segmentation metrics with mmsegmentation's conventions (spec segmentation_reid.md §6.3).

Per-class intersection / union / prediction / label pixel counts are **summed over the whole set** before
dividing (dataset-level IoU, not a per-image mean); pixels labelled ``ignore_index`` are dropped;
IoU_c = I_c / U_c; classes with U_c = 0 (absent from both ground truth and prediction) are NaN and skipped
by the mean; aAcc = Σ I_c / Σ label_c; Acc_c = I_c / label_c (NaN when the class never occurs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from structlearn.utils.validation import check_int


@dataclass
class SegMetrics:
    """Accumulates per-class pixel histograms batch by batch; ``compute`` gives mIoU, IoU_c, aAcc, mAcc."""

    n_classes: int
    ignore_index: int = 255
    intersect: np.ndarray = field(init=False)
    union: np.ndarray = field(init=False)
    pred_area: np.ndarray = field(init=False)
    label_area: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        check_int("n_classes", self.n_classes, minimum=1)
        self.reset()

    def reset(self) -> None:
        for name in ("intersect", "union", "pred_area", "label_area"):
            setattr(self, name, np.zeros(self.n_classes, dtype=np.int64))

    def update(self, pred: torch.Tensor | np.ndarray, label: torch.Tensor | np.ndarray) -> None:
        """Add a batch of predicted and true label maps of equal shape (predictions are class indices)."""
        p, y = torch.as_tensor(pred).reshape(-1).long(), torch.as_tensor(label).reshape(-1).long()
        if p.shape != y.shape:
            raise ValueError(
                f"prediction and label sizes differ: {tuple(pred.shape)} vs {tuple(label.shape)}"
            )
        keep = y != self.ignore_index
        p, y = p[keep], y[keep]
        if y.numel() and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"labels must be in [0, {self.n_classes}) or {self.ignore_index}")
        if p.numel() and (p.min() < 0 or p.max() >= self.n_classes):
            raise ValueError(f"predictions must be in [0, {self.n_classes})")
        C = self.n_classes
        inter = torch.bincount(y[p == y], minlength=C).numpy()
        pa, la = torch.bincount(p, minlength=C).numpy(), torch.bincount(y, minlength=C).numpy()
        self.intersect += inter
        self.pred_area += pa
        self.label_area += la
        self.union += pa + la - inter

    def compute(self) -> dict[str, float | list[float]]:
        """{'mIoU', 'aAcc', 'mAcc', 'IoU' (per class, NaN when undefined)} as fractions in [0, 1]."""
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(self.union > 0, self.intersect / self.union, np.nan)
            acc = np.where(self.label_area > 0, self.intersect / self.label_area, np.nan)
        total = self.label_area.sum()
        return {
            "mIoU": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
            "aAcc": float(self.intersect.sum() / total) if total else float("nan"),
            "mAcc": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
            "IoU": [float(v) for v in iou],
        }


def segmentation_metrics(
    pred: torch.Tensor | np.ndarray, label: torch.Tensor | np.ndarray, n_classes: int, ignore_index: int = 255
) -> dict[str, float | list[float]]:
    """Dataset-level metrics of whole prediction / label arrays in one call."""
    m = SegMetrics(n_classes, ignore_index)
    m.update(pred, label)
    return m.compute()


def plot_segmentation(
    images: np.ndarray, labels: np.ndarray, preds: np.ndarray, n_classes: int, path: str | Path
) -> Path:
    """PNG grid: one row per image with image / ground truth / prediction (ignored pixels black)."""
    from structlearn.utils.plotting import save_figure, subplots

    n = len(images)
    fig, axes = subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    cmap = "tab20" if n_classes <= 20 else "nipy_spectral"
    for i in range(n):
        img = np.asarray(images[i], dtype=np.float32)
        img = img.transpose(1, 2, 0) if img.shape[0] in (1, 3) else img
        img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
        axes[i, 0].imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None)
        for j, m in ((1, labels[i]), (2, preds[i])):
            axes[i, j].imshow(np.ma.masked_equal(np.asarray(m), 255), cmap=cmap, vmin=0, vmax=n_classes - 1)
            axes[i, j].set_facecolor("black")
        for ax, title in zip(axes[i], ("image", "ground truth", "prediction"), strict=True):
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title)
    return save_figure(fig, path)
