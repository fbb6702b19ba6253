"""Every clustering figure: a 2-D projection coloured by cluster, and the affinity sorted by cluster; with
ground truth, both beside the same figure for the true labels, so a wrong clustering looks wrong. And a
per-frame segmentation as coloured bars (TR2C, TSC), predictions aligned to the first row.

Both stay bounded for large N: the scatter plot shows a random subsample of at most ``max_points``
points (the projection is fitted on that subsample), and an affinity larger than ``max_pixels`` on a
side is binned into a ``max_pixels × max_pixels`` density image straight from its sparse entries — a
big sparse matrix is never densified.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA

from structlearn.cluster.segmentation import align_labels
from structlearn.utils.plotting import save_figure, subplots
from structlearn.utils.validation import check_int, check_labels


def _scatter(ax: Any, P: np.ndarray, y: np.ndarray, title: str, label: str) -> None:
    n_lab = int(y.max()) + 1 if y.size else 1
    # Qualitative colours while they suffice; a continuous map beyond 20 clusters.
    cmap = "tab10" if n_lab <= 10 else "tab20" if n_lab <= 20 else "turbo"
    sc = ax.scatter(
        P[:, 0],
        P[:, 1],
        c=y,
        s=4 if len(y) > 2000 else 10,
        cmap=cmap,
        alpha=0.8,
        vmin=-0.5,
        vmax=max(n_lab, 10 if n_lab <= 10 else n_lab) - 0.5,
    )
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(sc, ax=ax, label=label)


def plot_embedding_2d(
    X: np.ndarray,
    labels: Any,
    path: str | os.PathLike[str],
    *,
    true_labels: Any = None,
    title: str = "2-D PCA projection coloured by cluster",
    max_points: int = 20_000,
    random_state: int = 0,
) -> Path:
    """Scatter of the first two principal components (of a subsample when N > ``max_points``); with
    ``true_labels`` the same points are also coloured by the ground truth (left panel), side by side."""
    X = np.asarray(X, dtype=np.float32)
    y = check_labels(labels, X.shape[0])
    yt = None if true_labels is None else check_labels(true_labels, X.shape[0], name="true_labels")
    check_int("max_points", max_points, minimum=2)
    rng = np.random.default_rng(random_state)
    idx = rng.choice(X.shape[0], max_points, replace=False) if X.shape[0] > max_points else np.arange(len(X))
    Xs = X[idx]
    if Xs.shape[1] > 2:
        P = PCA(n_components=2, random_state=random_state).fit_transform(Xs)
    else:
        P = np.hstack([Xs, np.zeros((len(Xs), 2 - Xs.shape[1]), dtype=Xs.dtype)])
    shown = f" ({len(idx)} of {X.shape[0]} points)" if len(idx) < X.shape[0] else ""
    if yt is None:
        fig, ax = subplots(figsize=(6, 5))
        _scatter(ax, P, y[idx], title + shown, "cluster")
    else:
        fig, (ax1, ax2) = subplots(1, 2, figsize=(12, 5))
        _scatter(ax1, P, yt[idx], "true labels" + shown, "true label")
        _scatter(ax2, P, y[idx], "predicted clusters" + shown, "cluster")
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def affinity_image(A: Any, labels: Any, max_pixels: int = 1000) -> np.ndarray:
    """The affinity with rows/columns sorted by label, binned to at most ``max_pixels`` per side."""
    As = sp.coo_matrix(A) if not sp.issparse(A) else A.tocoo()
    n = As.shape[0]
    if As.shape != (n, n):
        raise ValueError(f"affinity must be square, got shape {As.shape}")
    y = check_labels(labels, n)
    check_int("max_pixels", max_pixels, minimum=1)
    order = np.argsort(y, kind="stable")
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    side = min(n, max_pixels)
    # Bin b of the sorted axis holds positions [b·n/side, (b+1)·n/side): mean affinity per cell.
    r = pos[As.row] * side // n
    c = pos[As.col] * side // n
    img = np.zeros((side, side))
    np.add.at(img, (r, c), np.abs(As.data))
    per_bin = np.bincount(np.arange(n) * side // n, minlength=side).astype(np.float64)
    return img / np.outer(per_bin, per_bin)


def _affinity_panel(ax: Any, A: Any, labels: Any, n: int, max_pixels: int, title: str) -> None:
    img = affinity_image(A, labels, max_pixels)
    y = np.sort(check_labels(labels, n))
    # Square-root scale: sparse kNN graphs are mostly tiny values, a linear scale shows nothing.
    im = ax.imshow(np.sqrt(img), cmap="viridis", interpolation="nearest")
    bounds = np.flatnonzero(np.diff(y)) + 1
    for b in bounds * img.shape[0] / n:
        ax.axhline(b - 0.5, color="white", lw=0.5)
        ax.axvline(b - 0.5, color="white", lw=0.5)
    binned = f", {n}→{img.shape[0]} bins" if img.shape[0] < n else ""
    ax.set_title(f"{title}{binned}", fontsize=10)
    ax.figure.colorbar(im, ax=ax, label="sqrt(mean |A|)")


def plot_affinity(
    A: Any,
    labels: Any,
    path: str | os.PathLike[str],
    *,
    true_labels: Any = None,
    title: str = "affinity sorted by cluster",
    max_pixels: int = 1000,
) -> Path:
    """Image of the (binned) affinity sorted by ``labels``, with cluster boundaries marked. With
    ``true_labels`` the first panel sorts by the ground truth (a good affinity is block-diagonal there,
    whatever the clustering did) and the second by the predicted clusters."""
    n = A.shape[0]
    if true_labels is None:
        fig, ax = subplots(figsize=(6, 5.5))
        _affinity_panel(ax, A, labels, n, max_pixels, title)
    else:
        fig, (ax1, ax2) = subplots(1, 2, figsize=(12, 5.5))
        _affinity_panel(ax1, A, true_labels, n, max_pixels, "sorted by true label")
        _affinity_panel(ax2, A, labels, n, max_pixels, "sorted by predicted cluster")
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def plot_segmentation(
    rows: Sequence[tuple[str, Any]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Save one coloured bar per labelling (time on the x axis) as a PNG; the first row is the
    reference and the others are aligned to it with
    :func:`~structlearn.cluster.segmentation.align_labels`."""
    if not rows:
        raise ValueError("nothing to plot: no label rows")
    ref = check_labels(rows[0][1], len(rows[0][1]), name=rows[0][0])
    bars = [ref] + [align_labels(ref, labels) for _, labels in rows[1:]]
    vmax = max(int(b.max()) for b in bars)
    cmap = "tab10" if vmax < 10 else "tab20"
    fig, axes = subplots(len(bars), 1, figsize=(10, 0.55 * len(bars) + 0.6), sharex=True, squeeze=False)
    for ax, (name, _), bar in zip(axes[:, 0], rows, bars, strict=True):
        ax.imshow(
            bar[None, :],
            aspect="auto",
            cmap=cmap,
            vmin=0,
            vmax=max(vmax, 9 if cmap == "tab10" else 19),
            interpolation="nearest",
            extent=(0, bar.size, 0, 1),
        )
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
    axes[-1, 0].set_xlabel("frame")
    if title:
        axes[0, 0].set_title(title)
    return save_figure(fig, path)
