"""Temporal subspace clustering baseline: least-squares self-expression with a temporal Laplacian.

In the spirit of TSC (Li, Fu & Fu, "Temporal Subspace Clustering for Human Motion Segmentation",
ICCV 2015) and OSC (Tierney, Gao & Guo, CVPR 2014), with LSR's ridge penalty (Lu et al., ECCV 2012) so
that the coefficients have a closed form; TSC itself also learns a non-negative dictionary by ADMM,
which is not reproduced here (the baseline TR2C arXiv 2506.21249 compares against). Column convention
as in the papers: X ∈ R^{D×T} holds one frame per column, Z ∈ R^{T×T} its self-expressive codes,

    min_Z ‖X − XZ‖_F² + λ₁ ‖Z‖_F² + λ₂ tr(Z L_t Zᵀ),

with L_t the temporal Laplacian over a window s (:mod:`structlearn.cluster.graph.temporal`), so that codes of
neighbouring frames (columns of Z) agree. Setting the gradient to zero gives the Sylvester equation

    (XᵀX + λ₁ I) Z + λ₂ Z L_t = XᵀX.

Both coefficient matrices are symmetric: with XᵀX = P diag(g) Pᵀ and L_t = Q diag(μ) Qᵀ,

    Z = P [ (g_i / (g_i + λ₁ + λ₂ μ_j))_{ij} ∘ (Pᵀ Q) ] Qᵀ,

and only the r = rank(X) ≤ min(D, T) non-zero g_i contribute, so P comes from a thin SVD of X
(O(T·D²)). The dense eigendecomposition of L_t (O(T³) time) and Z itself (T × T, O(T²) memory) are the
costs this baseline is timed for. Affinity: A = ½(|Z| + |Zᵀ|) (``affinity="abs"``, LSR) or the cosine
similarity of the columns of Z clipped at 0 (``affinity="cosine"``, as in TSC), then the shared
spectral step; above ``DENSE_MAX_N`` frames only each row's ``top_k`` largest entries are kept (and the
graph symmetrised by the entrywise maximum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from structlearn.cluster.graph.spectral import DENSE_MAX_N, check_eigen_solver, spectral_labels
from structlearn.cluster.graph.temporal import temporal_laplacian
from structlearn.cluster.methods.base import ClusterEstimator, EstimatorConfig
from structlearn.utils.validation import check_choice, check_float, check_int


def tsc_coefficients(X: np.ndarray, lambda1: float, lambda2: float, window: int) -> np.ndarray:
    """Closed-form codes Z (T × T, float64) for frames X given as rows (T × D).

    The arguments are trusted (λ₁ > 0, λ₂ ≥ 0, 1 ≤ window < T): :class:`TSC` validated them in its
    config and its data in ``fit``."""
    Xr = np.asarray(X, dtype=np.float64)
    T = Xr.shape[0]
    # Thin SVD of the frames-as-rows matrix: XᵀX (column convention) = U diag(σ²) Uᵀ.
    U, sig, _ = np.linalg.svd(Xr, full_matrices=False)
    keep = sig > sig[0] * max(T, Xr.shape[1]) * np.finfo(np.float64).eps
    P, g = U[:, keep], sig[keep] ** 2
    if lambda2 == 0:  # plain LSR: Z = P diag(g/(g+λ₁)) Pᵀ
        return (P * (g / (g + lambda1))) @ P.T
    mu, Q = scipy.linalg.eigh(temporal_laplacian(T, window).toarray())
    PtQ = P.T @ Q  # (r, T)
    PtQ *= g[:, None] / (g[:, None] + lambda1 + lambda2 * mu[None, :])
    return P @ (PtQ @ Q.T)  # r·T² flops in this order, not T³


def _affinity_rows(Z: np.ndarray, rows: slice, kind: str) -> np.ndarray:
    """Rows ``rows`` of the affinity built from codes Z, diagonal zeroed."""
    if kind == "abs":
        A = 0.5 * (np.abs(Z[rows]) + np.abs(Z[:, rows].T))
    else:
        norms = np.maximum(np.linalg.norm(Z, axis=0), np.finfo(np.float64).tiny)
        A = (Z[:, rows].T @ Z) / np.outer(norms[rows], norms)
        np.maximum(A, 0.0, out=A)
    A[np.arange(A.shape[0]), np.arange(rows.start, rows.start + A.shape[0])] = 0.0
    return A


def tsc_affinity(
    Z: np.ndarray, kind: str = "abs", top_k: int | None = None, block: int = 1024
) -> sp.csr_matrix:
    """Symmetric affinity from codes Z (T × T): dense, or each row's ``top_k`` largest entries kept
    (built in row blocks, so no second T × T array is allocated)."""
    T = Z.shape[0]
    if top_k is None:
        return sp.csr_matrix(_affinity_rows(Z, slice(0, T), kind))
    k = min(top_k, T - 1)
    parts = []
    for start in range(0, T, block):
        A = _affinity_rows(Z, slice(start, min(start + block, T)), kind)
        cols = np.argpartition(-A, k, axis=1)[:, :k]
        vals = np.take_along_axis(A, cols, axis=1)
        rows = np.repeat(np.arange(start, start + A.shape[0]), k)
        parts.append((vals.ravel(), rows, cols.ravel()))
    vals, rows, cols = (np.concatenate(p) for p in zip(*parts, strict=True))
    A = sp.csr_matrix((vals, (rows, cols)), shape=(T, T))
    return A.maximum(A.T).tocsr()


@dataclass(frozen=True)
class TSCConfig(EstimatorConfig):
    """Validated parameters of :class:`TSC` (declared once; its constructor is built here)."""

    lambda1: float = 0.1
    lambda2: float = 1.0
    window: int = 2
    affinity: str = "abs"
    normalize: bool = True
    top_k: int = 50
    n_init: int = 10
    eigen_solver: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("lambda1", self.lambda1, positive=True)
        check_float("lambda2", self.lambda2, nonnegative=True)
        check_int("window", self.window, minimum=1)
        check_choice("affinity", self.affinity, ["abs", "cosine"])
        check_int("top_k", self.top_k, minimum=1)
        check_int("n_init", self.n_init, minimum=1)
        check_eigen_solver(self.eigen_solver)


class TSC(ClusterEstimator):
    """Temporal subspace clustering (LSR + temporal Laplacian) of one sequence of frames.

    Args:
        n_clusters: number of motions K.
        lambda1: ridge weight λ₁ on ‖Z‖_F².
        lambda2: temporal weight λ₂ on tr(Z L_t Zᵀ) (0 gives plain LSR).
        window: temporal window s.
        affinity: ``"abs"`` (½(|Z| + |Zᵀ|)) or ``"cosine"`` (cosine of code vectors, negatives cut).
        normalize: centre the frames and scale each to unit norm first (standard for self-expression).
        top_k: entries kept per row of the affinity above ``DENSE_MAX_N`` frames.
        n_init: k-means restarts of the spectral step.
        eigen_solver: eigen-solver of the spectral step (see ``spectral_embedding``).
        random_state: seed of the spectral step.

    Fitted attributes: ``labels_``, ``coef_`` (Z, T × T), ``affinity_matrix_`` (sparse CSR).
    """

    _config_class = TSCConfig
    _init_defaults: ClassVar[dict[str, Any]] = {"n_clusters": 2, "random_state": None}

    def fit(self, X: Any, y: Any = None) -> TSC:
        self._validate_params()  # the config: every parameter checked once, here
        Xa = self._validate_X(X, reset=True, dtype=np.float64)
        T = Xa.shape[0]
        if self.window >= T:
            raise ValueError(
                f"the sequence has {T} frames; window={self.window} needs at least {self.window + 1}"
            )
        if self.normalize:
            Xa = Xa - Xa.mean(axis=0)
            norms = np.linalg.norm(Xa, axis=1, keepdims=True)
            Xa = np.divide(Xa, norms, out=np.zeros_like(Xa), where=norms > 0)
        Z = tsc_coefficients(Xa, self.lambda1, self.lambda2, self.window)
        A_sparse = tsc_affinity(Z, self.affinity, self.top_k if T > DENSE_MAX_N else None)
        self.coef_ = Z
        self.affinity_matrix_ = A_sparse
        self.labels_ = spectral_labels(
            A_sparse,
            int(self.n_clusters),
            n_components=None,
            n_init=self.n_init,
            solver=self.eigen_solver,
            random_state=self.random_state,
        )
        return self
