"""Sparse k-reciprocal Jaccard distance for clustering-based unsupervised re-identification.

Zhong, Zheng, Cao & Li, "Re-ranking Person Re-identification with k-reciprocal Encoding", CVPR 2017
(arXiv 1701.08398), in the clustering variant used by SpCL / Cluster-Contrast / CACL / SiCL (spec
segmentation_reid.md §2.2; k1 = 30, k2 = 6, no mixing with the original distance). For L2-normalised
features x_i and d_ij = ‖x_i − x_j‖² = 2 − 2 x_iᵀx_j:

1. N(i, k) = the k + 1 nearest neighbours of i (i itself first);
   R(i, k) = { j ∈ N(i, k) : i ∈ N(j, k) } (k-reciprocal set, i included).
2. Expansion (h = ⌊k1/2⌉): R*(i) = R(i, k1) ∪ ⋃ { R(c, h) : c ∈ R(i, k1), |R(c, h) ∩ R(i, k1)| > ⅔|R(c, h)| }.
3. Encoding: V_ij = exp(−d_ij) / Σ_{l ∈ R*(i)} exp(−d_il) for j ∈ R*(i), else 0 (rows sum to 1).
4. Local query expansion: V_i ← mean of V_j over the k2 nearest neighbours j of i (i included).
5. d_J(i, j) = 1 − m_ij / (2 − m_ij), m_ij = Σ_l min(V_il, V_jl) (rows sum to 1, so Σ_l max = 2 − m_ij).

Everything is sparse and vectorised: the neighbour sets are 0/1 CSR matrices (R = K ∘ Kᵀ; the overlap
counts of step 2 are one sparse product R·R_hᵀ restricted to R's support), V has O(N·k1) non-zeros, and
m is accumulated column by column of V (pairs of rows sharing a column), in chunks of at most
``pair_chunk`` pairs. No N×N dense array is formed; memory is O(nnz(m)), the pairs of points whose
encodings overlap. The kNN search uses scikit-learn's ``NearestNeighbors`` (exact; blocked brute force
in high dimension). Pairs that share no support have d_J = 1 and are not stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from structlearn.utils.validation import check_features, check_float, check_int

# Pairs (a, b) of rows sharing a column of V processed per chunk: 3 int64/float64 arrays of this length.
PAIR_CHUNK = 4_000_000


def knn_with_self(X: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k + 1) of each row's k + 1 nearest rows (Euclidean), the row itself in column 0.

    With duplicate rows the search may list a twin before the row itself; the row is then moved to
    the front (or put in the last slot if it was not returned at all).
    """
    n = X.shape[0]
    kk = min(k + 1, n)
    idx = NearestNeighbors(n_neighbors=kk).fit(X).kneighbors(X, return_distance=False)
    rows = np.arange(n)
    is_self = idx == rows[:, None]
    has_self = is_self.any(axis=1)
    idx[~has_self, -1] = rows[~has_self]
    is_self[~has_self, -1] = True
    # Stable move of the self column to position 0: sort by (not self) keeps the others in order.
    order = np.argsort(~is_self, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)


def _neighbour_matrix(idx: np.ndarray, k: int) -> sp.csr_matrix:
    """0/1 CSR with row i = N(i, k) (the first k + 1 columns of ``idx``)."""
    n = idx.shape[0]
    cols = idx[:, : k + 1]
    rows = np.repeat(np.arange(n), cols.shape[1])
    return sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols.ravel())), shape=(n, n))


def reciprocal_sets(idx: np.ndarray, k: int) -> sp.csr_matrix:
    """0/1 CSR of the k-reciprocal sets R(i, k) (i ∈ R(i, k))."""
    K = _neighbour_matrix(idx, k)
    return K.multiply(K.T).tocsr()


def _row_softmax_neg(R: sp.csr_matrix, d: np.ndarray) -> np.ndarray:
    """Per row of the sparsity pattern R: softmax of −d over the row's entries (stable)."""
    counts = np.diff(R.indptr)
    rows = np.repeat(np.arange(R.shape[0]), counts)
    dmin = np.full(R.shape[0], np.inf)
    np.minimum.at(dmin, rows, d)
    w = np.exp(-(d - dmin[rows]))
    return w / np.bincount(rows, weights=w, minlength=R.shape[0])[rows]


def _pair_dots(X: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """x_aᵀx_b for index vectors a, b (chunked to bound the gathered memory)."""
    out = np.empty(a.size, dtype=np.float64)
    for s in range(0, a.size, chunk):
        e = min(s + chunk, a.size)
        out[s:e] = np.einsum("ij,ij->i", X[a[s:e]], X[b[s:e]], dtype=np.float64)
    return out


def _min_overlap(V: sp.csr_matrix, pair_chunk: int, m_min: float = 0.0) -> sp.csr_matrix:
    """m_ij = Σ_l min(V_il, V_jl) for the pairs of rows that share a column, keeping m_ij ≥ ``m_min``.

    Rows are processed in blocks: every non-zero (i, l) of the block is paired with the rows j of
    column l (an inverted index, V in CSC form), the minima are summed per (i, j) inside the block,
    and only the block's kept entries are stored. A block generates about ``pair_chunk`` pairs.
    """
    n = V.shape[0]
    Vc = V.tocsc()
    occ = np.diff(Vc.indptr).astype(np.int64)
    work = np.bincount(np.repeat(np.arange(n), np.diff(V.indptr)), weights=occ[V.indices], minlength=n)
    block_of = (np.cumsum(work) - work) // pair_chunk
    starts = np.flatnonzero(np.r_[True, block_of[1:] != block_of[:-1]])
    stops = np.r_[starts[1:], n]
    parts = []
    for r0, r1 in zip(starts, stops, strict=True):
        lo, hi = V.indptr[r0], V.indptr[r1]
        rows = np.repeat(np.arange(r0, r1), np.diff(V.indptr[r0 : r1 + 1]))
        cols, vals = V.indices[lo:hi], V.data[lo:hi]
        cnt = occ[cols]
        rep = np.repeat(np.arange(cols.size), cnt)
        pos = Vc.indptr[cols][rep] + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        mins = np.minimum(vals[rep], Vc.data[pos])
        blk = sp.csr_matrix((mins, (rows[rep] - r0, Vc.indices[pos])), shape=(r1 - r0, n))
        blk.sum_duplicates()
        if m_min > 0:
            blk.data[blk.data < m_min] = 0.0
            blk.eliminate_zeros()
        parts.append(blk)
    return sp.vstack(parts, format="csr")


def jaccard_distance(
    features: Any,
    k1: int = 30,
    k2: int = 6,
    *,
    max_distance: float | None = None,
    pair_chunk: int = PAIR_CHUNK,
) -> sp.csr_matrix:
    """k-reciprocal Jaccard distances of the rows of ``features`` (rows are L2-normalised first).

    Returns a symmetric CSR matrix holding d_J(i, j) for every pair whose encodings overlap (the
    diagonal, 0, included and stored explicitly); a pair that is absent has d_J = 1. With
    ``max_distance`` only entries ≤ it are kept — all DBSCAN with ``eps ≤ max_distance`` needs (pass
    the result to ``DBSCAN(metric='precomputed')``, which reads a sparse matrix's stored entries as the
    candidate neighbours).
    """
    X = check_features(features, name="features", min_samples=2, dtype=np.float32)
    n = X.shape[0]
    k1 = check_int("k1", k1, minimum=1)
    k2 = check_int("k2", k2, minimum=1)
    if max_distance is not None:
        max_distance = check_float("max_distance", max_distance, nonnegative=True)
    pair_chunk = check_int("pair_chunk", pair_chunk, minimum=1)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("features has all-zero rows: they have no direction to compare")
    X = X / norms
    k1 = min(k1, n - 1)
    kh = max(int(np.around(k1 / 2)), 1)
    idx = knn_with_self(X, max(k1, k2 - 1))

    R = reciprocal_sets(idx, k1)
    Rh = reciprocal_sets(idx, kh)
    size_h = np.asarray(Rh.sum(axis=1)).ravel()
    # |R(i) ∩ R_h(c)| for c ∈ R(i): the product counts common members, R's pattern restricts to c ∈ R(i).
    overlap = (R @ Rh.T).multiply(R).tocoo()
    keep = overlap.data > (2.0 / 3.0) * size_h[overlap.col]
    sel = sp.csr_matrix((np.ones(int(keep.sum())), (overlap.row[keep], overlap.col[keep])), shape=(n, n))
    Rstar = (R + sel @ Rh).tocsr()
    Rstar.data[:] = 1.0
    Rstar.sort_indices()

    rows = np.repeat(np.arange(n), np.diff(Rstar.indptr))
    d = 2.0 - 2.0 * _pair_dots(X, rows, Rstar.indices)
    V = sp.csr_matrix((_row_softmax_neg(Rstar, d), Rstar.indices, Rstar.indptr), shape=(n, n))
    if k2 > 1:
        Q = _neighbour_matrix(idx, min(k2, idx.shape[1]) - 1).astype(np.float64)
        V = (Q @ V).tocsr() / float(min(k2, idx.shape[1]))

    # d_J ≤ max_distance  ⇔  m ≥ 2(1 − max_distance)/(2 − max_distance): prune while accumulating.
    m_min = 0.0 if max_distance is None else 2.0 * (1.0 - max_distance) / (2.0 - max_distance) - 1e-12
    M = _min_overlap(V, pair_chunk, m_min).tocoo()
    dj = np.clip(1.0 - M.data / (2.0 - M.data), 0.0, 1.0)
    keep = np.ones(dj.size, dtype=bool) if max_distance is None else dj <= max_distance
    # The diagonal is 0 (m_ii = 1) up to rounding; store it explicitly as 0 so sparse consumers keep it.
    diag = M.row == M.col
    dj[diag] = 0.0
    keep |= diag
    D = sp.csr_matrix((dj[keep], (M.row[keep], M.col[keep])), shape=(n, n))
    D.sort_indices()
    return D
