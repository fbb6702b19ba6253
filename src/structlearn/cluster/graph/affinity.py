"""Sparse affinities from self-expressive coefficients or from features (all scipy CSR).

Coefficients → affinity, as in SENet (arXiv 2110.04318 §4) and EnSC (arXiv 1605.02633 §5; spec
clustering.md §1.5, §2.4):

1. keep the ``k`` largest |c_ij| of each row, diagonal excluded (:func:`topk_blockwise` computes rows in
   blocks so a dense N×N matrix never exists: peak memory is ``block_size × N`` values);
2. L2-normalise the rows (:func:`row_normalize`);
3. either A = ½(|C| + |C|ᵀ) (:func:`symmetric_affinity`) or a symmetric kNN (k = 3) connectivity graph
   over the rows of C treated as feature vectors (:func:`knn_affinity_from_rows`).

:func:`knn_graph` is the feature-space kNN graph of plain spectral clustering (scikit-learn
``NearestNeighbors``), symmetrised as ½(K + Kᵀ).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.neighbors import NearestNeighbors

from structlearn.utils.malloc import trim_heap
from structlearn.utils.validation import check_choice, check_int

# Rows per block when dense coefficient rows are sparsified: block × N fp32 values (290 MB at N = 70k).
DEFAULT_BLOCK_SIZE = 1024
# Rows per block in the kNN-over-rows search: two dense 256 × N fp32 slabs (72 MB each at N = 70k).
KNN_BLOCK_SIZE = 256
# Largest N for which a dense N×N input is accepted by the helpers here (the estimators never make one).
DENSE_INPUT_MAX_N = 20_000


def drop_diagonal(S: sp.spmatrix, offset: int = 0) -> sp.csr_matrix:
    """Remove the entries (i, i + offset) of a sparse matrix (vectorised; no LIL conversion)."""
    S = S.tocoo()
    keep = S.col != S.row + offset
    return sp.csr_matrix((S.data[keep], (S.row[keep], S.col[keep])), shape=S.shape)


def csr_row_topk(S: sp.spmatrix, k: int, *, by_abs: bool = True) -> sp.csr_matrix:
    """Keep the ``k`` largest entries (by magnitude when ``by_abs``) of every row of a sparse matrix.

    Vectorised: one lexsort of the non-zeros by (row, −score) and a rank-within-row mask.
    """
    k = check_int("k", k, minimum=1)
    S = S.tocsr()
    S.sum_duplicates()
    S.eliminate_zeros()
    counts = np.diff(S.indptr)
    if counts.size == 0 or counts.max(initial=0) <= k:
        return S.copy()
    rows = np.repeat(np.arange(S.shape[0]), counts)
    score = np.abs(S.data) if by_abs else S.data
    order = np.lexsort((-score, rows))
    rank = np.arange(order.size) - S.indptr[rows[order]]
    keep = np.sort(order[rank < k])
    out = sp.csr_matrix((S.data[keep], (rows[keep], S.indices[keep])), shape=S.shape)
    return out


def topk_blockwise(
    block_fn: Callable[[int, int], torch.Tensor | np.ndarray],
    n_rows: int,
    n_cols: int,
    k: int,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    exclude_diagonal: bool = True,
    value_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: Any = None,
    dtype: torch.dtype | None = torch.float32,
) -> sp.csr_matrix:
    """Sparse top-``k`` (by |value|) of each row of a matrix produced block by block.

    ``block_fn(start, stop)`` returns the dense rows ``start:stop`` (shape (stop − start, n_cols)).
    With ``exclude_diagonal`` entry (i, i) is zeroed first (self-expression never uses x_i itself).
    ``value_fn``, if given, maps the kept values afterwards; it must keep their order by |v| (odd and
    non-decreasing in |v|, e.g. a soft threshold; or increasing where the values are non-negative, e.g.
    TR2C's kernel exp((v − 1)/η)) so that selecting first is the same as selecting by |value_fn(v)|,
    and it then touches N·k values instead of N². Blocks are cast to ``dtype`` (``None``: kept as
    they are). Memory: one block (``block_size × n_cols``) plus the N·k kept entries. ``progress`` is an
    optional tqdm-like object whose ``update(n)`` is called per block. This is the one block-wise
    top-k of the package (SENet's coefficients, PRO-DSC's |YYᵀ| graph, TR2C's sparse membership).
    """
    n_rows = check_int("n_rows", n_rows, minimum=1)
    n_cols = check_int("n_cols", n_cols, minimum=1)
    k = min(check_int("k", k, minimum=1), n_cols)
    block_size = check_int("block_size", block_size, minimum=1)
    vals, cols = [], []
    for start in range(0, n_rows, block_size):
        stop = min(start + block_size, n_rows)
        B = block_fn(start, stop)
        B = torch.as_tensor(B).detach()
        if dtype is not None:
            B = B.to(dtype)
        if B.shape != (stop - start, n_cols):
            raise ValueError(f"block_fn returned shape {tuple(B.shape)}, expected {(stop - start, n_cols)}")
        if exclude_diagonal and start < n_cols:
            r = torch.arange(start, min(stop, n_cols))
            B = B.clone()
            B[r - start, r] = 0.0
        _, idx = torch.topk(B.abs(), k, dim=1)
        kept = torch.gather(B, 1, idx)
        if value_fn is not None:
            kept = value_fn(kept)
        vals.append(kept.cpu().numpy())
        cols.append(idx.cpu().numpy())
        del B
        # Freed block memory can stay in glibc's heap (SENet on 70k points after 2,000 training steps:
        # 1.7 → 9.5 GB resident over this loop, all of it released by one malloc_trim; utils.malloc).
        trim_heap()
        if progress is not None:
            progress.update(stop - start)
    V = np.concatenate(vals).ravel()
    J = np.concatenate(cols).ravel().astype(np.int64)
    R = np.repeat(np.arange(n_rows), k)
    C = sp.csr_matrix((V, (R, J)), shape=(n_rows, n_cols))
    C.eliminate_zeros()
    return C


def topk_sparsify(C: Any, k: int, *, block_size: int = DEFAULT_BLOCK_SIZE, exclude_diagonal: bool = True):
    """Top-``k`` per row of a dense (N ≤ ``DENSE_INPUT_MAX_N``) or sparse coefficient matrix, as CSR."""
    if sp.issparse(C):
        Cs = C.tocsr().astype(np.float32)
        if exclude_diagonal:
            Cs = drop_diagonal(Cs)
        return csr_row_topk(Cs, k)
    arr = np.asarray(C, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"C must be 2-D, got shape {arr.shape}")
    if arr.shape[0] > DENSE_INPUT_MAX_N:
        raise ValueError(
            f"dense C with {arr.shape[0]} rows exceeds {DENSE_INPUT_MAX_N}; pass a sparse matrix or use "
            "topk_blockwise"
        )
    t = torch.from_numpy(arr)
    return topk_blockwise(
        lambda a, b: t[a:b],
        arr.shape[0],
        arr.shape[1],
        k,
        block_size=block_size,
        exclude_diagonal=exclude_diagonal,
    )


def row_normalize(C: sp.spmatrix, norm: str = "l2") -> sp.csr_matrix:
    """Rows scaled to unit L2 (or L1 / max) norm; all-zero rows stay zero."""
    check_choice("norm", norm, ["l2", "l1", "max"])
    Cs = sp.csr_matrix(C, dtype=np.float32, copy=True)
    a = np.abs(Cs.data)
    rows = np.repeat(np.arange(Cs.shape[0]), np.diff(Cs.indptr))
    if norm == "l2":
        nrm = np.sqrt(np.bincount(rows, weights=a.astype(np.float64) ** 2, minlength=Cs.shape[0]))
    elif norm == "l1":
        nrm = np.bincount(rows, weights=a, minlength=Cs.shape[0])
    else:
        nrm = np.zeros(Cs.shape[0])
        np.maximum.at(nrm, rows, a)
    scale = np.divide(1.0, nrm, out=np.zeros_like(nrm), where=nrm > 0)
    Cs.data *= scale[rows].astype(np.float32)
    return Cs


def symmetric_affinity(C: sp.spmatrix) -> sp.csr_matrix:
    """A = ½(|C| + |C|ᵀ) with the diagonal removed."""
    Ca = abs(sp.csr_matrix(C, dtype=np.float64))
    A = drop_diagonal((Ca + Ca.T) * 0.5)
    A.eliminate_zeros()
    return A


def knn_affinity_from_rows(
    C: sp.spmatrix, n_neighbors: int = 3, *, block_size: int = KNN_BLOCK_SIZE
) -> sp.csr_matrix:
    """Symmetric kNN connectivity graph over the rows of C (each row a sparse feature vector).

    Rows are L2-normalised, so the nearest rows in Euclidean distance are those with the largest inner
    products ⟨c_i, c_j⟩ (exact search). Per block of rows, the block is densified (block × N) and
    multiplied by the sparse C (torch CSR × dense): cost nnz(C)·N in total whatever the column
    occupancy. A sparse × sparse product would cost Σ_j occ_j² instead, which explodes when a few
    "hub" columns appear in most rows (measured: a SENet C at N = 10k had a column in 83 % of rows,
    and sparse × sparse took 5× longer). The row itself is excluded; rows with no positive product
    with any other row get fewer than ``n_neighbors`` edges. Returns ½(K + Kᵀ), K the 0/1 kNN matrix.
    """
    k = check_int("n_neighbors", n_neighbors, minimum=1)
    Cn = row_normalize(C)
    n = Cn.shape[0]
    k = min(k, n - 1)
    Ct = _torch_csr(Cn)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        Db = torch.from_numpy(Cn[start:stop].toarray())  # (b, N) dense slab of this block's rows
        S = (Ct @ Db.T).T  # (b, N) inner products with every row
        r = torch.arange(stop - start)
        S[r, r + start] = -1.0  # the row itself
        val, idx = torch.topk(S, k, dim=1)
        ok = (val > 0).numpy().ravel()  # rows sharing no support with this one are not neighbours
        rows.append(np.repeat(np.arange(start, stop), k)[ok])
        cols.append(idx.numpy().ravel()[ok])
    R, J = np.concatenate(rows), np.concatenate(cols)
    K = sp.csr_matrix((np.ones(R.size), (R, J)), shape=(n, n))
    return ((K + K.T) * 0.5).tocsr()


def _torch_csr(A: sp.csr_matrix) -> torch.Tensor:
    """scipy CSR (float32) → torch sparse CSR tensor sharing nothing with scipy."""
    A = A.tocsr()
    A.sort_indices()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(
            torch.from_numpy(A.indptr.astype(np.int64)),
            torch.from_numpy(A.indices.astype(np.int64)),
            torch.from_numpy(A.data.astype(np.float32)),
            size=A.shape,
            check_invariants=False,
        )


def knn_graph(
    X: np.ndarray, n_neighbors: int = 10, *, mode: str = "connectivity", n_jobs: int | None = None
) -> sp.csr_matrix:
    """Symmetric kNN graph of feature rows (self excluded): ½(K + Kᵀ), K 0/1 or distance-weighted."""
    check_choice("mode", mode, ["connectivity", "distance"])
    n = X.shape[0]
    k = check_int("n_neighbors", n_neighbors, minimum=1, maximum=max(n - 1, 1))
    nn = NearestNeighbors(n_neighbors=k, n_jobs=n_jobs).fit(X)
    K = nn.kneighbors_graph(None, mode=mode)  # query None: each point's neighbours excluding itself
    return ((K + K.T) * 0.5).tocsr()


def affinity_from_coefficients(C: sp.spmatrix, kind: str = "nearest_neighbors", n_neighbors: int = 3):
    """The affinity of SENet/EnSC from sparse coefficients: rows L2-normalised, then ``symmetric``
    ½(|C| + |C|ᵀ) or a ``nearest_neighbors`` graph over the rows of C."""
    check_choice("affinity", kind, ["symmetric", "nearest_neighbors"])
    Cn = row_normalize(C)
    if kind == "symmetric":
        return symmetric_affinity(Cn)
    return knn_affinity_from_rows(Cn, n_neighbors)


def coefficient_vote(C: sp.spmatrix, labels: np.ndarray, n_labels: int | None = None) -> np.ndarray:
    """Labels of new points from their coefficients over a labelled dictionary.

    Row i of C (m × N) holds the coefficients of new point i over the N dictionary points; the score of
    label ℓ is Σ_{j: labels_j = ℓ} |c_ij| and the prediction its argmax (ties → smallest label, so an
    all-zero row gets label 0; the estimators give every row at least one non-zero).
    """
    Cs = abs(sp.csr_matrix(C))
    n = int(labels.max()) + 1 if n_labels is None else n_labels
    onehot = sp.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)), shape=(len(labels), n))
    scores = (Cs @ onehot).toarray()
    return scores.argmax(axis=1).astype(np.int64)


def check_neighbors(n_neighbors: int, n: int, subset: bool = False) -> int:
    """``n_neighbors`` for an n-point kNN graph (self excluded), capped at n − 1 with a warning: the
    graph is then complete and carries no cluster structure (scikit-learn refuses this case; a warning
    keeps tiny inputs, e.g. scikit-learn's own estimator checks, running)."""
    if n_neighbors >= n:
        where = "training subset (max_train_samples)" if subset else "data"
        warnings.warn(
            f"n_neighbors={n_neighbors} but the {where} has only {n} samples: the neighbour graph is "
            f"complete and the labels carry no structure; lower n_neighbors",
            UserWarning,
            stacklevel=3,
        )
    return min(n_neighbors, n - 1)
