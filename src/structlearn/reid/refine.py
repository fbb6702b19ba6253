"""CACL's cluster-guided refinement (arXiv 2106.07846; spec segmentation_reid.md §3.3, as implemented).

Two DBSCAN clusterings of one Jaccard matrix: loose (eps) and tight (eps − gap). For a loose cluster C
let D(C) = Σ_{i,j∈C} d_J(i, j)/|C|² (mean pairwise distance, diagonal included). For a member i, over
the n_i members of C(i) lying in a *different* tight sub-cluster, s_i = Σ_j d_J(i, j)/n_i² (n_i := 1 when
there is none); a tight sub-cluster T scores D_T = Σ_{i∈T} s_i. Member i keeps its loose label if
ratio·D_{T(i)} ≤ D(C(i)); otherwise it becomes a singleton class. Tight-level outliers are their own
sub-clusters. The paper states the rule as "keep sub-cluster C_j of C if D(C_j | C) < D(C)".

Vectorised over the stored entries of the sparse Jaccard matrix: an absent pair has d_J = 1, so each sum
is (sum of the stored entries) + (number of pairs not stored) × 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from structlearn.reid.pseudo_labels import assign_outliers
from structlearn.utils.validation import check_float


def refine_labels(D: sp.csr_matrix, loose: np.ndarray, tight: np.ndarray, ratio: float = 1.0) -> np.ndarray:
    """Loose labels (−1 = outlier) after refinement; removed members and outliers become singletons."""
    ratio = check_float("ratio", ratio, positive=True)
    loose = np.asarray(loose, dtype=np.int64)
    tight = assign_outliers(np.asarray(tight, dtype=np.int64), "singleton")  # own sub-cluster each
    n = loose.size
    if D.shape != (n, n) or tight.size != n:
        raise ValueError(f"D {D.shape}, loose {loose.shape} and tight {tight.shape} do not match")
    out = loose.copy()
    member = loose >= 0
    if not member.any():
        return assign_outliers(out, "singleton")
    n_loose = int(loose.max()) + 1
    size_c = np.bincount(loose[member], minlength=n_loose).astype(np.float64)
    # Within-cluster member count of each point's tight sub-cluster, keyed by (loose, tight).
    key = np.where(member, loose * (int(tight.max()) + 1) + tight, -1)
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    same_t = cnt[inv].astype(np.float64)

    C = D.tocoo()
    pair = member[C.row] & (loose[C.row] == loose[C.col])  # stored pairs inside one loose cluster
    r, c, d = C.row[pair], C.col[pair], C.data[pair]
    cl = loose[r]
    stored_sum = np.bincount(cl, weights=d, minlength=n_loose)
    stored_cnt = np.bincount(cl, minlength=n_loose).astype(np.float64)
    D_C = (stored_sum + (size_c**2 - stored_cnt)) / np.maximum(size_c**2, 1.0)

    other = tight[r] != tight[c]  # j in a different tight sub-cluster of the same loose cluster
    s_sum = np.bincount(r[other], weights=d[other], minlength=n)
    s_cnt = np.bincount(r[other], minlength=n).astype(np.float64)
    n_i = np.where(member, size_c[np.maximum(loose, 0)] - same_t, 0.0)
    s = np.where(n_i > 0, (s_sum + (n_i - s_cnt)) / np.maximum(n_i, 1.0) ** 2, 0.0)
    D_T = np.bincount(inv, weights=np.where(member, s, 0.0))[inv]
    drop = member & (ratio * D_T > D_C[np.maximum(loose, 0)])
    out[drop] = -1
    return assign_outliers(out, "singleton")
