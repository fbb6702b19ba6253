"""Relaxed normalised-cut loss and the batch affinity of NeuNcut (arXiv 2503.09260, §3, eqs. (4)–(8)).

For a batch affinity W ∈ R^{B×B}, degrees d = W1, D = Diag(d), L = D − W, and soft memberships
P ∈ R^{B×k} (rows on the simplex):

    vol_j = Σ_i d_i P_ij,      H = P · Diag(vol)^{−1/2}                     (vol + 1e-6 under the root)
    spectral term   tr(Hᵀ L H) = Σ_j P_jᵀ L P_j / vol_j                     (relaxed Ncut)
    orthogonality   ‖Hᵀ D H − I_k‖_F / k                                     (not squared, divided by k)
    loss            tr(Hᵀ L H) + (γ/2) · ‖Hᵀ D H − I_k‖_F / k

With one-hot P the spectral term is exactly Ncut = Σ_j cut(V_j, V̄_j)/vol(V_j) and Hᵀ D H = I, so the
penalty pushes soft memberships towards hard ones (spec clustering.md §4.2). W may be sparse (the
training-set kNN graph NeuNcut uses by default): the loss then costs O(nnz(W)·k). :func:`hard_ncut`
scores hard labels on a scipy sparse graph (NeuNcut's label-free selection among runs);
:func:`ncut_descent` lowers it by weighted kernel k-means (a discrete Ncut descent, no eigenvectors).

Per-batch affinity (``NeuNcut(affinity="batch")``, spec §4.4): the official code uses
W_ij = exp(−‖x_i − x_j‖²/(2σ²)) with σ = 3 on unit-norm
rows, where every entry lies in [e^{−2/9}, 1] — nearly flat. The default here takes σ from the data
(median pairwise distance inside the batch) and keeps only each point's ``n_neighbors`` nearest
neighbours in the batch, symmetrised ½(K + Kᵀ); ``sigma=3.0, n_neighbors=None`` is the faithful
reproduction. Self-loops are removed (W_ii = 0): they do not change L but would inflate the degrees.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from structlearn.utils.validation import check_float, check_int

VOL_EPS = 1e-6  # the official code's guard inside the square root


class NcutLoss(NamedTuple):
    """Total loss and its two parts (all scalars; ``total`` is the one to differentiate)."""

    total: torch.Tensor
    spectral: torch.Tensor
    orthogonality: torch.Tensor


def ncut_loss(W: torch.Tensor, P: torch.Tensor, gamma: float = 80.0) -> NcutLoss:
    """tr(HᵀLH) + (γ/2)·‖HᵀDH − I‖_F/k for affinity ``W`` (B, B) and memberships ``P`` (B, k).

    ``W`` may be a dense or a sparse (COO/CSR) torch tensor; a sparse one costs O(nnz(W)·k), so a kNN
    graph over many points can be used without a dense B×B matrix.
    """
    gamma = check_float("gamma", gamma, nonnegative=True)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square, got shape {tuple(W.shape)}")
    if P.ndim != 2 or P.shape[0] != W.shape[0]:
        raise ValueError(f"P must have shape (B, k) with B = {W.shape[0]}, got {tuple(P.shape)}")
    k = P.shape[1]
    sparse = W.layout != torch.strided
    d = torch.sparse.sum(W, dim=1).to_dense() if sparse else W.sum(dim=1)
    vol = d @ P  # (k,)
    H = P * torch.rsqrt(vol + VOL_EPS)
    DH = d[:, None] * H
    HtDH = H.T @ DH
    # tr(HᵀLH) = tr(HᵀDH) − tr(HᵀWH): no B×B Laplacian is formed.
    WH = torch.sparse.mm(W, H) if sparse else W @ H
    spectral = torch.diagonal(HtDH).sum() - (H * WH).sum()
    eye = torch.eye(k, dtype=P.dtype, device=P.device)
    orth = torch.linalg.matrix_norm(HtDH - eye) / k
    return NcutLoss(spectral + 0.5 * gamma * orth, spectral, orth)


def hard_ncut(A: sp.spmatrix, labels: np.ndarray, n_clusters: int) -> float:
    """Ncut = Σ_j cut(V_j, V̄_j)/vol(V_j) of hard labels on a sparse affinity (O(nnz(A))).

    An empty cluster counts 1 (the largest value a cluster's term can take), so that using fewer than
    ``n_clusters`` clusters — which always lowers the plain sum — is not rewarded when runs are compared.
    """
    A = sp.csr_matrix(A)
    lab = np.asarray(labels, dtype=np.int64)
    d = np.asarray(A.sum(axis=1)).ravel()
    vol = np.bincount(lab, weights=d, minlength=n_clusters)
    coo = A.tocoo()
    same = lab[coo.row] == lab[coo.col]
    assoc = np.bincount(lab[coo.row[same]], weights=coo.data[same], minlength=n_clusters)
    terms = np.ones(n_clusters)
    np.divide(vol - assoc, vol, out=terms, where=vol > 0)
    return float(terms.sum())


def ncut_descent(
    A: sp.spmatrix, labels: np.ndarray, n_clusters: int, *, sigma: float = 0.0, max_iter: int = 50
) -> tuple[np.ndarray, float]:
    """Lower the hard Ncut of ``labels`` on A by weighted kernel k-means (Dhillon, Guan & Kulis, TPAMI 2007).

    With weights d_i and kernel K = σD⁻¹ + D⁻¹AD⁻¹ the weighted kernel k-means objective is the Ncut plus
    the constant σ(N − k) − k + Σ_i A_ii/d_i; the distance of point i to cluster c is, without K_ii,

        dist(i, c) = −2 (σ[i ∈ c] + links(i, c)/d_i) / vol(c) + (σ vol(c) + links(c, c)) / vol(c)²,

    and every point moves to its nearest cluster at once. σ ≥ 1 makes K positive semi-definite (each
    sweep then cannot raise the objective) but also makes points stick to their cluster; σ = 0 moves
    freely and may oscillate, so the labels with the lowest Ncut seen are returned with that Ncut.
    O(nnz(A)·k) per sweep; stops when no point moves. Returns (labels, Ncut).
    """
    A = sp.csr_matrix(A, dtype=np.float64)
    n = A.shape[0]
    if n == 0 or A.shape[1] != n:
        raise ValueError(f"A must be a non-empty square affinity, got shape {A.shape}")
    if not np.isfinite(A.data).all() or (A.data < 0).any():
        raise ValueError("A must have finite, non-negative entries")
    k = check_int("n_clusters", n_clusters, minimum=1)
    check_float("sigma", sigma, nonnegative=True)
    check_int("max_iter", max_iter, minimum=0)
    lab = np.asarray(labels, dtype=np.int64).copy()
    if lab.shape != (n,) or lab.min() < 0 or lab.max() >= k:
        raise ValueError(f"labels must be {n} integers in [0, {k}), got shape {lab.shape}")
    d = np.maximum(np.asarray(A.sum(axis=1)).ravel(), np.finfo(np.float64).tiny)
    rows = np.arange(n)
    best_lab, best = lab, np.inf
    for sweep in range(max_iter + 1):
        onehot = sp.csr_matrix((np.ones(n), (rows, lab)), shape=(n, k))
        links = np.asarray((A @ onehot).todense())  # links(i, c) = Σ_{j ∈ c} A_ij
        vol = np.bincount(lab, weights=d, minlength=k)
        within = np.bincount(lab, weights=links[rows, lab], minlength=k)
        used = vol > 0
        score = float(np.where(used, 1.0 - within / np.where(used, vol, 1.0), 1.0).sum())  # = hard_ncut
        if score < best - 1e-12:
            best_lab, best = lab, score
        if sweep == max_iter:
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = -2.0 * links / d[:, None] / vol + (sigma * vol + within) / vol**2
        dist[rows, lab] -= 2.0 * sigma / vol[lab]  # the σ[i ∈ c] term
        dist[:, ~used] = np.inf  # an emptied cluster stays empty
        new = dist.argmin(axis=1)
        if np.array_equal(new, lab):
            break
        lab = new
    return best_lab, best


def median_distance(X: torch.Tensor) -> torch.Tensor:
    """Median of the pairwise Euclidean distances between distinct rows (a bandwidth from the data)."""
    n = X.shape[0]
    if n < 2:
        raise ValueError("need at least 2 points for a pairwise-distance bandwidth")
    return _median_off_diagonal(torch.cdist(X, X))


def _median_off_diagonal(dist: torch.Tensor) -> torch.Tensor:
    """Median of the strict upper triangle of a symmetric (n, n) distance matrix."""
    n = dist.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=dist.device)
    return dist[iu[0], iu[1]].median()


def gaussian_affinity(
    X: torch.Tensor,
    sigma: float | str = "median",
    n_neighbors: int | None = 10,
) -> torch.Tensor:
    """Dense (B, B) Gaussian affinity of a batch, optionally kNN-sparsified inside the batch.

    Args:
        X: batch features (B, D).
        sigma: bandwidth σ > 0, or ``"median"`` for the median pairwise distance of this batch.
        n_neighbors: keep each row's ``n_neighbors`` largest weights (self excluded) and symmetrise
            ½(K + Kᵀ); ``None`` keeps the full kernel.
    """
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"X must be a 2-D batch with at least 2 rows, got shape {tuple(X.shape)}")
    B = X.shape[0]
    dist = torch.cdist(X, X)  # once: the median bandwidth reads the same distances
    sq = dist.square()
    if isinstance(sigma, str):
        if sigma != "median":
            raise ValueError(f"unknown sigma {sigma!r}; give a positive number or 'median'")
        s = _median_off_diagonal(dist).clamp_min(torch.finfo(X.dtype).tiny)
    else:
        s = torch.as_tensor(check_float("sigma", sigma, positive=True), dtype=X.dtype, device=X.device)
    K = torch.exp(-sq / (2 * s * s))
    K.fill_diagonal_(0.0)
    if n_neighbors is None:
        return K
    m = check_int("n_neighbors", n_neighbors, minimum=1)
    m = min(m, B - 1)
    # Largest m weights per row; the zeroed diagonal can only be picked when the kernel underflows to
    # 0 elsewhere too, and then it contributes nothing.
    idx = torch.topk(K, m, dim=1).indices
    mask = torch.zeros_like(K).scatter_(1, idx, 1.0)
    Ks = K * mask
    return 0.5 * (Ks + Ks.T)
