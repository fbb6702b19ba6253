"""The one spectral step every clustering method here ends with.

sparse symmetric affinity A → normalised adjacency M = D^{-1/2} A D^{-1/2} (the top eigenvectors of M
are the bottom eigenvectors of L_sym = I − M) → ``n_components`` eigenvectors → rows L2-normalised
(Ng, Jordan & Weiss 2001) → k-means with ``n_init`` restarts.

Affinities are kept sparse (scipy CSR) throughout. A dense eigensolver is used only up to
``DENSE_MAX_N`` nodes, where it is faster and more robust than ARPACK; above it ARPACK (Lanczos) or
LOBPCG run on the sparse matrix, so memory stays O(nnz(A) + N·n_components).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh, lobpcg
from sklearn.cluster import KMeans

from structlearn.utils.seed import rng_seed
from structlearn.utils.validation import check_int

DENSE_MAX_N = 2000
Solver = Literal["auto", "dense", "arpack", "lobpcg"]


def check_affinity(A: Any) -> sp.csr_matrix:
    """Validate a square, finite, non-negative affinity and return its symmetrisation ½(A + Aᵀ) as CSR."""
    if sp.issparse(A):
        As = A.tocsr().astype(np.float64)
    else:
        arr = np.asarray(A, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"affinity must be a 2-D matrix, got shape {arr.shape}")
        As = sp.csr_matrix(arr)
    n, m = As.shape
    if n != m:
        raise ValueError(f"affinity must be square, got shape {As.shape}")
    if n == 0:
        raise ValueError("affinity is empty")
    if not np.all(np.isfinite(As.data)):
        raise ValueError("affinity contains NaN or infinite values")
    if As.nnz and As.data.min() < 0:
        raise ValueError("affinity must be non-negative")
    As = ((As + As.T) * 0.5).tocsr()
    As.eliminate_zeros()
    return As


def normalized_adjacency(A: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """M = D^{-1/2} A D^{-1/2} and the degrees; isolated nodes get a zero row and column."""
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(deg)
    np.divide(1.0, np.sqrt(deg), out=inv_sqrt, where=deg > 0)
    Dm = sp.diags(inv_sqrt)
    return (Dm @ A @ Dm).tocsr(), deg


def spectral_embedding(
    A: Any,
    n_components: int,
    *,
    solver: Solver = "auto",
    random_state: Any = None,
    tol: float = 1e-8,
) -> np.ndarray:
    """Top ``n_components`` eigenvectors of D^{-1/2} A D^{-1/2}, rows L2-normalised, as an (N, k) array."""
    As = check_affinity(A)
    n = As.shape[0]
    k = check_int("n_components", n_components, minimum=1, maximum=n)
    M, _ = normalized_adjacency(As)
    if solver == "auto":
        solver = "dense" if n <= DENSE_MAX_N or k >= n - 1 else "arpack"
    seed = rng_seed(random_state)
    if solver == "dense":
        _, U = scipy.linalg.eigh(M.toarray(), subset_by_index=[n - k, n - 1])
    elif solver == "arpack":
        v0 = np.random.default_rng(seed).uniform(-1, 1, n)
        # M + I has spectrum in [0, 2]: Lanczos converges to its largest eigenvalues without
        # shift-invert. Disconnected graphs have eigenvalue 1 with multiplicity; the default Krylov
        # size (2k + 1) then misses copies, hence the larger ncv.
        ncv = min(n, max(4 * k + 1, 40))
        _, U = eigsh(M + sp.identity(n, format="csr"), k=k, which="LA", v0=v0, tol=tol, ncv=ncv)
    elif solver == "lobpcg":
        X0 = np.random.default_rng(seed).standard_normal((n, k))
        _, U = lobpcg(M, X0, largest=True, tol=tol, maxiter=500)
    else:
        raise ValueError(f"unknown eigen solver {solver!r}; choose one of: auto, dense, arpack, lobpcg")
    U = np.ascontiguousarray(U[:, ::-1])
    norms = np.linalg.norm(U, axis=1, keepdims=True)
    np.divide(U, norms, out=U, where=norms > 0)
    return U


def kmeans_labels(
    embedding: np.ndarray, n_clusters: int, *, n_init: int = 10, random_state: Any = None
) -> np.ndarray:
    """k-means with ``n_init`` restarts on an embedding; the labels of the best restart."""
    km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=rng_seed(random_state))
    return km.fit_predict(embedding).astype(np.int64)


def spectral_clustering(
    A: Any,
    n_clusters: int,
    *,
    n_components: int | None = None,
    n_init: int = 10,
    solver: Solver = "auto",
    random_state: Any = None,
) -> np.ndarray:
    """Labels from a (sparse) affinity: spectral embedding then k-means.

    ``n_components`` defaults to ``n_clusters``; SENet uses more eigenvectors than clusters
    (15 for k = 10), which is why it is a separate knob.
    """
    n = A.shape[0]
    k = check_int("n_clusters", n_clusters, minimum=1, maximum=n)
    nc = k if n_components is None else check_int("n_components", n_components, minimum=1, maximum=n)
    check_int("n_init", n_init, minimum=1)
    emb = spectral_embedding(A, nc, solver=solver, random_state=random_state)
    return kmeans_labels(emb, k, n_init=n_init, random_state=random_state)
