"""Pseudo-identities from features: k-reciprocal Jaccard distance + DBSCAN (spec segmentation_reid.md §2.2).

``DBSCAN(eps, min_samples=4, metric='precomputed')`` on the sparse Jaccard matrix (only pairs with
d_J ≤ eps are stored, see :func:`~structlearn.reid.jaccard.jaccard_distance`). Outliers (DBSCAN's −1)
either become **singleton** classes kept in training (SpCL, CACL, SiCL) or are **dropped** (label −1,
Cluster-Contrast).

Choosing eps without labels. The public code bases hard-code eps = 0.6 for Market/Duke/MSMT; on other
data the right value differs. :func:`select_eps` derives it from the *training* distances only, with
the k-distance rule of DBSCAN's authors (Ester et al., KDD 1996, §4.2): sort every point's distance to
its (min_samples − 1)-th nearest other point; the knee of that curve separates points inside dense
regions from noise. The knee is the point of the sorted curve farthest from the chord joining its ends
(the "kneedle" construction, Satopää et al. 2011). Points with no stored neighbour at that rank count as
distance 1 (the Jaccard maximum).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from structlearn.reid.jaccard import jaccard_distance
from structlearn.utils.validation import check_choice, check_float, check_int

Outliers = Literal["singleton", "drop"]


def kth_neighbour_distance(D: sp.csr_matrix, k: int) -> np.ndarray:
    """Each row's k-th smallest stored off-diagonal distance (1.0 where fewer than k are stored)."""
    k = check_int("k", k, minimum=1)
    C = D.tocoo()
    off = C.row != C.col
    rows, vals = C.row[off], C.data[off]
    order = np.lexsort((vals, rows))
    rows, vals = rows[order], vals[order]
    counts = np.bincount(rows, minlength=D.shape[0])
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.ones(D.shape[0])
    has = counts >= k
    out[has] = vals[start[has] + k - 1]
    return out


def select_eps(D: sp.csr_matrix, min_samples: int = 4, *, lo: float = 0.05, hi: float = 0.95) -> float:
    """eps at the knee of the sorted (min_samples − 1)-distance curve, clipped to [lo, hi]."""
    min_samples = check_int("min_samples", min_samples, minimum=2)
    kd = np.sort(kth_neighbour_distance(D, min_samples - 1))
    n = kd.size
    if n < 3 or kd[-1] - kd[0] < 1e-12:
        return float(np.clip(kd[-1] if n else hi, lo, hi))
    x = np.linspace(0.0, 1.0, n)
    y = (kd - kd[0]) / (kd[-1] - kd[0])
    knee = int(np.argmax(x - y))  # convex increasing curve: largest gap below the chord y = x
    return float(np.clip(kd[knee], lo, hi))


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
        eps = select_eps(D, max(min_samples, 2))
    raw = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(D)
    return assign_outliers(raw, outliers), float(eps), D
