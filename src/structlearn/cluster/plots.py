"""Clustering figures: a 2-D projection coloured by cluster, and the affinity sorted by cluster; with
ground truth, both beside the same figure for the true labels, so a wrong clustering looks wrong.

Both stay bounded for large N: the scatter plot shows a random subsample of at most ``max_points``
points (the projection is fitted on that subsample), and an affinity larger than ``max_pixels`` on a
side is binned into a ``max_pixels × max_pixels`` density image straight from its sparse entries — a
big sparse matrix is never densified.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA

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
    ``true_labels`` a second panel colours the same points by the ground truth, side by side."""
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
        _scatter(ax1, P, y[idx], "predicted clusters" + shown, "cluster")
        _scatter(ax2, P, yt[idx], "true labels" + shown, "label")
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
