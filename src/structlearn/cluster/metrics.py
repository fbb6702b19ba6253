"""Clustering metrics: ACC (Hungarian matching), NMI, ARI, and subspace-clustering diagnostics.

NMI normalisation differs between the papers (PRO-DSC: arithmetic, scikit-learn's default; SENet and
NeuNcut: geometric). :func:`evaluate` reports ``nmi`` (arithmetic) and ``nmi_geometric``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from structlearn.utils.validation import check_labels


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    yt = np.asarray(y_true.detach().cpu() if hasattr(y_true, "detach") else y_true)
    if yt.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got an array of shape {yt.shape}")
    if yt.shape[0] == 0:
        raise ValueError("y_true is empty")
    y_true_arr = check_labels(yt, yt.shape[0], name="y_true")
    y_pred_arr = check_labels(y_pred, y_true_arr.shape[0], name="y_pred")
    return y_true_arr, y_pred_arr


def clustering_accuracy(y_true: Any, y_pred: Any) -> float:
    """ACC: the best one-to-one matching of predicted clusters to classes (Hungarian algorithm)."""
    yt, yp = _check_pair(y_true, y_pred)
    M = contingency_matrix(yt, yp)
    rows, cols = linear_sum_assignment(-M)
    return float(M[rows, cols].sum() / yt.shape[0])


def evaluate(y_true: Any, y_pred: Any) -> dict[str, float]:
    """All label metrics at once: ``acc``, ``nmi`` (arithmetic), ``nmi_geometric`` and ``ari``."""
    yt, yp = _check_pair(y_true, y_pred)
    return {
        "acc": clustering_accuracy(yt, yp),
        "nmi": float(normalized_mutual_info_score(yt, yp, average_method="arithmetic")),
        "nmi_geometric": float(normalized_mutual_info_score(yt, yp, average_method="geometric")),
        "ari": float(adjusted_rand_score(yt, yp)),
    }


def subspace_preserving_error(C: Any, y_true: Any) -> float:
    """Mean over rows of the fraction of |c_i·| mass on points of another true cluster.

    ``C`` is (N × N) dense or scipy-sparse with the row convention x_i ≈ Σ_j c_ij x_j. Rows with no
    mass count as error 0 (they carry no wrong coefficients); 0 means perfectly subspace preserving.
    """
    Cs = sp.csr_matrix(C) if not sp.issparse(C) else C.tocsr()
    n = Cs.shape[0]
    if Cs.shape != (n, n):
        raise ValueError(f"C must be square, got shape {Cs.shape}")
    y = check_labels(y_true, n, name="y_true")
    Cs = abs(Cs).tocoo()
    wrong = np.bincount(Cs.row, weights=Cs.data * (y[Cs.row] != y[Cs.col]), minlength=n)
    total = np.bincount(Cs.row, weights=Cs.data, minlength=n)
    frac = np.divide(wrong, total, out=np.zeros(n), where=total > 0)
    return float(frac.mean())
