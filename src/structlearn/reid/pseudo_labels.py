"""Pseudo-identities from features: k-reciprocal Jaccard distance + DBSCAN (spec segmentation_reid.md §2.2).

``DBSCAN(eps, min_samples=4, metric='precomputed')`` on the sparse Jaccard matrix (only pairs with
d_J ≤ eps are stored, see :func:`~structlearn.reid.jaccard.jaccard_distance`). Outliers (DBSCAN's −1)
either become **singleton** classes kept in training (SpCL, CACL, SiCL) or are **dropped** (label −1,
Cluster-Contrast).

Choosing eps without labels. The public code bases hard-code eps = 0.6 for Market/Duke/MSMT with
ImageNet-pretrained features; on other data and backbones the right value differs. :func:`select_eps`
derives it from the *training* distances only: it runs DBSCAN over a grid of eps values (default
0.30 … 0.70) and keeps the one giving the most clusters (the largest such eps on ties). Too small an eps
leaves most points as noise, too large merges identities; the count of clusters peaks in between. We
measured DBSCAN's own k-distance knee rule (Ester et al., KDD 1996) on the procedural pedestrians: on
the features of a freshly initialised network it chose eps ≈ 0.68, which merged 1,200 images of 150
identities into 2 clusters; the cluster-count rule chose 0.50 (63 clusters) there.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from structlearn.reid.jaccard import jaccard_distance
from structlearn.utils.validation import check_choice, check_float, check_int

Outliers = Literal["singleton", "drop"]


EPS_GRID = tuple(np.round(np.arange(0.30, 0.701, 0.025), 3))


def select_eps(D: sp.csr_matrix, min_samples: int = 4, grid: tuple[float, ...] = EPS_GRID) -> float:
    """The eps of ``grid`` whose DBSCAN clustering of the precomputed distances ``D`` has the most
    clusters (ties: the largest eps)."""
    min_samples = check_int("min_samples", min_samples, minimum=1)
    if len(grid) == 0:
        raise ValueError("grid must hold at least one eps value")
    counts = [
        int(DBSCAN(eps=check_float("eps", e, positive=True), min_samples=min_samples, metric="precomputed")
            .fit_predict(D).max()) + 1
        for e in grid
    ]  # fmt: skip
    best = max(counts)
    return float(max(e for e, c in zip(grid, counts, strict=True) if c == best))


def assign_outliers(labels: np.ndarray, outliers: Outliers) -> np.ndarray:
    """DBSCAN labels with −1 turned into new singleton classes (``singleton``) or kept (``drop``)."""
    check_choice("outliers", outliers, ["singleton", "drop"])
    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels < 0
    if outliers == "singleton" and noise.any():
        start = labels.max(initial=-1) + 1
        labels[noise] = start + np.arange(int(noise.sum()))
    return labels


def pseudo_labels(
    features: Any,
    eps: float | None = 0.6,
    *,
    min_samples: int = 4,
    k1: int = 30,
    k2: int = 6,
    outliers: Outliers = "singleton",
    D: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, float, sp.csr_matrix]:
    """Pseudo-identity labels, the eps used (``eps=None``: :func:`select_eps`) and the Jaccard matrix.

    ``D`` may be passed to reuse a Jaccard matrix (e.g. for several eps values); it must then hold
    every pair with d_J ≤ eps.
    """
    min_samples = check_int("min_samples", min_samples, minimum=1)
    if eps is not None:
        eps = check_float("eps", eps, positive=True)
    if D is None:
        # With a fixed eps, pairs beyond it are never needed; the eps rule needs the full k-distances.
        D = jaccard_distance(features, k1, k2, max_distance=eps)
    if eps is None:
        eps = select_eps(D, min_samples)
    raw = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(D)
    return assign_outliers(raw, outliers), float(eps), D
