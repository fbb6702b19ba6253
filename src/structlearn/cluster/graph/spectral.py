"""The one spectral step every clustering method here ends with.

sparse symmetric affinity A → normalised adjacency M = D^{-1/2} A D^{-1/2} (the top eigenvectors of M
are the bottom eigenvectors of L_sym = I − M) → ``n_components`` eigenvectors → rows L2-normalised
(Ng, Jordan & Weiss 2001; ``norm="rows"``, what SENet, EnSC and SSC-OMP use) or each row divided by
√degree (``norm="degree"``: the random-walk eigenvectors D^{-1/2}u, what scikit-learn's
``spectral_embedding`` returns) → k-means with ``n_init`` restarts. The two span the same eigenspace and
differ only in how k-means weighs the rows: on the Fashion-MNIST-70k scattering kNN graph the same
eigenvectors give ACC 0.598 row-normalised and 0.640 degree-scaled.

Why the eigen step is split by connected component. Each connected component c with at least one
edge contributes the eigenvalue 1 of M exactly once, with eigenvector D^{1/2}1_c (normalised); a graph
with several components therefore has a *repeated* top eigenvalue, and Krylov solvers (ARPACK's
Lanczos) return only some copies of a repeated eigenvalue — on a 10-component kNN graph with 10k points
ARPACK found 5 of the 10, and the clustering lost a quarter of its accuracy. Here those eigenvectors
are written down exactly, and only the *non-trivial* eigenpairs are computed numerically, per
component, on M_c with D^{1/2}1_c projected out (so no solver ever faces the structural degeneracy):

* components up to ``dense_max_n`` nodes are packed into block-diagonal groups of at most
  ``dense_max_n`` nodes and solved by a dense ``eigh`` (exact, fast at that size);
* larger components use an iterative solver on the sparse matrix (memory O(nnz + N·k)): LOBPCG on
  L_sym preconditioned by algebraic multigrid (``amg``, pyamg's smoothed aggregation — what
  scikit-learn's ``eigen_solver='amg'`` does), plain ``lobpcg``, or ARPACK (``arpack``). Every
  returned pair is checked (‖M u − λ u‖ ≤ ``RESIDUAL_TOL``); a failed check falls back to ARPACK with a
  larger Krylov space, and a warning is issued if that fails too.

The global top ``n_components`` are then chosen among all candidates by eigenvalue. If the graph has
more connected components (with edges) than ``n_components``, the top eigenspace is not unique: the
largest components are kept and a :class:`DisconnectedGraphWarning` says so; an estimator should make
its affinity connected (:func:`structlearn.cluster.graph.connectivity.connect_components`) rather than rely
on that choice.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh, lobpcg
from sklearn.cluster import KMeans

from structlearn.cluster.graph.connectivity import DisconnectedGraphWarning, component_labels
from structlearn.utils.seed import rng_seed
from structlearn.utils.validation import check_choice, check_int

# Components (or packed groups of small components) up to this many nodes are solved densely.
DENSE_MAX_N = 2000
Solver = Literal["auto", "dense", "arpack", "lobpcg", "amg"]
EIGEN_SOLVERS: tuple[str, ...] = ("auto", "dense", "arpack", "lobpcg", "amg")
EmbeddingNorm = Literal["rows", "degree"]
EMBEDDING_NORMS: tuple[str, ...] = ("rows", "degree")
# Largest accepted residual ‖M u − λ u‖ of a unit eigenvector before the fallback solver is tried.
RESIDUAL_TOL = 1e-4


class EigenSolverWarning(UserWarning):
    """An iterative eigen-solver did not reach the residual tolerance, even after the fallback."""


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


def check_eigen_solver(solver: Any) -> str:
    """One of :data:`EIGEN_SOLVERS`; ``amg`` needs the pyamg package."""
    solver = check_choice("eigen_solver", solver, EIGEN_SOLVERS)
    if solver == "amg" and not _has_pyamg():
        raise ValueError("eigen_solver='amg' needs the pyamg package: pip install pyamg")
    return solver


def normalized_adjacency(A: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """M = D^{-1/2} A D^{-1/2} and the degrees; isolated nodes get a zero row and column."""
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(deg)
    np.divide(1.0, np.sqrt(deg), out=inv_sqrt, where=deg > 0)
    Dm = sp.diags(inv_sqrt)
    return (Dm @ A @ Dm).tocsr(), deg


def _has_pyamg() -> bool:
    try:
        import pyamg  # noqa: F401
    except ImportError:
        return False
    return True


def _residuals(M: sp.csr_matrix, vals: np.ndarray, U: np.ndarray) -> np.ndarray:
    """‖M u_i − λ_i u_i‖ / ‖u_i‖ for each column."""
    R = M @ U - U * vals
    return np.linalg.norm(R, axis=0) / np.maximum(np.linalg.norm(U, axis=0), 1e-300)


def _dense_nontrivial(M: sp.csr_matrix, V: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``r`` eigenpairs of a (block-diagonal) M restricted to the complement of the columns of V
    (orthonormal trivial eigenvectors, one per component): M − 2VVᵀ moves their eigenvalue 1 to −1,
    the bottom of M's spectrum, so it never competes with the non-trivial ones."""
    Md = M.toarray()
    if V.shape[1]:
        Md -= 2.0 * (V @ V.T)
    n = Md.shape[0]
    r = min(r, n)
    vals, U = scipy.linalg.eigh(Md, subset_by_index=[n - r, n - 1])
    return vals[::-1], U[:, ::-1]


def _iterative_nontrivial(
    M: sp.csr_matrix, v: np.ndarray, r: int, solver: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``r`` eigenpairs of one connected component's M orthogonal to its trivial eigenvector v."""
    n = M.shape[0]
    r = min(r, n - 1)
    Y = v[:, None]
    vals = U = None
    if solver in ("amg", "lobpcg"):
        X0 = rng.standard_normal((n, r))
        X0 -= Y @ (Y.T @ X0)
        precond = None
        if solver == "amg":
            import pyamg

            # L_sym = I − M is positive semi-definite with null vector v; a small shift makes the AMG
            # hierarchy well defined (as scikit-learn does for its 'amg' mode).
            L = (sp.identity(n, format="csr") - M).tocsr()
            ml = pyamg.smoothed_aggregation_solver((L + 1e-5 * sp.identity(n, format="csr")).tocsr())
            precond = ml.aspreconditioner()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # lobpcg's own tolerance chatter
                lam, U = lobpcg(L, X0, M=precond, Y=Y, tol=1e-6, maxiter=300, largest=False)
            vals = 1.0 - lam
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                vals, U = lobpcg(M, X0, Y=Y, tol=1e-6, maxiter=500, largest=True)
        order = np.argsort(-vals)
        vals, U = vals[order], U[:, order]
        if np.all(_residuals(M, vals, U) <= RESIDUAL_TOL):
            return vals, U
    # ARPACK (also the fallback): Lanczos on M + I − 2vvᵀ, spectrum in [−1, 2], largest first.
    op = LinearOperator(
        (n, n), matvec=lambda x: M @ x + x - 2.0 * v * (v @ x), dtype=np.float64
    )  # the matvec is a sparse product plus two length-n vector operations: no dense matrix
    ncv = min(n, max(4 * r + 1, 40))
    v0 = rng.uniform(-1, 1, n)
    try:
        vals, U = eigsh(op, k=r, which="LA", v0=v0, ncv=ncv, tol=1e-10, maxiter=max(1000, 20 * n))
    except ArpackNoConvergence as err:
        vals, U = err.eigenvalues, err.eigenvectors
    vals = vals - 1.0
    order = np.argsort(-vals)
    vals, U = vals[order], U[:, order]
    res = _residuals(M, vals, U) if U.size else np.zeros(0)
    if U.shape[1] < r or np.any(res > RESIDUAL_TOL):
        warnings.warn(
            f"the eigen-solver did not converge on a {n}-node component (worst residual "
            f"{res.max(initial=np.inf):.1e}); the spectral embedding may be inaccurate",
            EigenSolverWarning,
            stacklevel=4,
        )
    return vals, U


def spectral_embedding(
    A: Any,
    n_components: int,
    *,
    solver: Solver = "auto",
    random_state: Any = None,
    dense_max_n: int = DENSE_MAX_N,
    norm: EmbeddingNorm = "rows",
) -> np.ndarray:
    """Top ``n_components`` eigenvectors of D^{-1/2} A D^{-1/2} as an (N, k) array, rows L2-normalised
    (``norm="rows"``) or divided by √degree (``norm="degree"``, scikit-learn's embedding).

    Exact for any number of connected components (see the module docstring). ``solver`` picks the
    method for components larger than ``dense_max_n`` nodes: ``auto`` (AMG-preconditioned LOBPCG when
    pyamg is installed, else ARPACK), ``amg``, ``lobpcg``, ``arpack``, or ``dense`` (everything dense:
    O(N²) memory for the largest component).
    """
    As = check_affinity(A)
    k = check_int("n_components", n_components, minimum=1, maximum=As.shape[0])
    solver = check_eigen_solver(solver)
    dense_max_n = check_int("dense_max_n", dense_max_n, minimum=1)
    norm = check_choice("norm", norm, EMBEDDING_NORMS)
    return _embedding(As, k, solver, random_state, dense_max_n, norm)


def _embedding(
    As: sp.csr_matrix, k: int, solver: str, random_state: Any, dense_max_n: int, norm: str
) -> np.ndarray:
    """:func:`spectral_embedding` on validated arguments (``As`` from :func:`check_affinity`)."""
    n = As.shape[0]
    if solver == "auto":
        solver = "amg" if _has_pyamg() else "arpack"
    M, deg = normalized_adjacency(As)
    rng = np.random.default_rng(rng_seed(random_state))

    n_comp, comp = component_labels(As)
    sizes = np.bincount(comp, minlength=n_comp)
    has_edges = np.bincount(comp, weights=(deg > 0).astype(np.float64), minlength=n_comp) > 0
    # Trivial eigenvectors (eigenvalue exactly 1): √deg on each component with edges, normalised.
    sqrt_deg = np.sqrt(deg)
    comp_norm = np.sqrt(np.bincount(comp, weights=deg, minlength=n_comp))
    edge_comps = np.flatnonzero(has_edges)
    if edge_comps.size > k:
        warnings.warn(
            f"the affinity graph has {edge_comps.size} connected components, more than the {k} "
            "eigenvectors requested: the spectral embedding is not unique and only the largest "
            f"{k} components are told apart; make the affinity connected",
            DisconnectedGraphWarning,
            stacklevel=3,
        )
    # Candidate eigenpairs: (eigenvalue, component size for tie-breaks, column block rows, vectors).
    cand_vals: list[np.ndarray] = []
    cand_size: list[np.ndarray] = []
    cand_vecs: list[tuple[np.ndarray, np.ndarray]] = []  # (node indices, (len, m) vectors)

    # Trivial eigenvectors of (at most k of) the components with edges, largest components first.
    kept = edge_comps[np.argsort(-sizes[edge_comps], kind="stable")[:k]]
    t_nodes = np.flatnonzero(np.isin(comp, kept))
    if t_nodes.size:
        col = np.searchsorted(np.sort(kept), comp[t_nodes])
        T = sp.csr_matrix(
            (sqrt_deg[t_nodes] / comp_norm[comp[t_nodes]], (np.arange(t_nodes.size), col)),
            shape=(t_nodes.size, kept.size),
        ).toarray()
        cand_vals.append(np.ones(kept.size))
        cand_size.append(sizes[np.sort(kept)].astype(np.float64))
        cand_vecs.append((t_nodes, T))

    r = k - min(k, edge_comps.size)  # non-trivial eigenpairs needed from each component
    if r > 0:
        isolated = np.flatnonzero(~has_edges)
        if isolated.size:  # an isolated node's only eigenvalue is 0 (zero row of M)
            nodes = np.flatnonzero(np.isin(comp, isolated))[:r]
            cand_vals.append(np.zeros(nodes.size))
            cand_size.append(np.ones(nodes.size))
            cand_vecs.append((nodes, np.eye(nodes.size)))
        small = edge_comps[(sizes[edge_comps] <= dense_max_n) | (solver == "dense")]
        large = edge_comps[(sizes[edge_comps] > dense_max_n) & (solver != "dense")]
        # Pack small components into groups of ≤ dense_max_n nodes (a dense eigh per group).
        group = np.floor_divide(np.cumsum(sizes[small]) - 1, max(dense_max_n, 1)) if small.size else small
        for g in np.unique(group):
            comps = small[group == g]
            nodes = np.flatnonzero(np.isin(comp, comps))
            Mg = M[nodes][:, nodes]
            local = np.searchsorted(comps, comp[nodes])
            V = sp.csr_matrix(
                (sqrt_deg[nodes] / comp_norm[comp[nodes]], (np.arange(nodes.size), local)),
                shape=(nodes.size, comps.size),
            ).toarray()
            if nodes.size > comps.size:  # a group of 2-node components has no room left
                vals, U = _dense_nontrivial(Mg, V, min(r, nodes.size - comps.size))
                cand_vals.append(vals)
                cand_size.append(np.full(vals.size, float(nodes.size)))
                cand_vecs.append((nodes, U))
        for c in large:
            nodes = np.flatnonzero(comp == c)
            Mc = M[nodes][:, nodes].tocsr()
            v = sqrt_deg[nodes] / comp_norm[c]
            vals, U = _iterative_nontrivial(Mc, v, r, solver, rng)
            cand_vals.append(vals)
            cand_size.append(np.full(vals.size, float(nodes.size)))
            cand_vecs.append((nodes, U))

    all_vals = np.concatenate(cand_vals)
    all_size = np.concatenate(cand_size)
    block_of = np.concatenate([np.full(v.size, i) for i, v in enumerate(cand_vals)])
    col_of = np.concatenate([np.arange(v.size) for v in cand_vals])
    # Largest eigenvalue first; among (numerically) equal ones, the larger component first.
    pick = np.lexsort((-all_size, -np.round(all_vals, 10)))[:k]
    U = np.zeros((n, k))
    for j, idx in enumerate(pick):
        nodes, vecs = cand_vecs[block_of[idx]]
        U[nodes, j] = vecs[:, col_of[idx]]
    scale = np.linalg.norm(U, axis=1, keepdims=True) if norm == "rows" else np.sqrt(deg)[:, None]
    np.divide(U, scale, out=U, where=scale > 0)
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
    dense_max_n: int = DENSE_MAX_N,
    norm: EmbeddingNorm = "rows",
) -> np.ndarray:
    """Labels from a (sparse) affinity: spectral embedding (row scaling ``norm``) then k-means.

    ``n_components`` defaults to ``n_clusters``; SENet uses more eigenvectors than clusters
    (15 for k = 10), which is why it is a separate knob. The public entry: every argument is checked
    once, here or by :func:`spectral_embedding` (estimators, which validate theirs in ``fit``, call
    :func:`spectral_labels`).
    """
    k = check_int("n_clusters", n_clusters, minimum=1, maximum=A.shape[0])
    check_int("n_init", n_init, minimum=1)
    nc = k if n_components is None else n_components  # checked by spectral_embedding
    emb = spectral_embedding(
        A, nc, solver=solver, random_state=random_state, dense_max_n=dense_max_n, norm=norm
    )
    return kmeans_labels(emb, k, n_init=n_init, random_state=random_state)


def spectral_labels(
    A: Any, k: int, n_components: int | None, n_init: int, solver: str, random_state: Any, norm: str = "rows"
) -> np.ndarray:
    """:func:`spectral_clustering` into ``k`` clusters with trusted arguments, for an estimator whose
    config validated them (``k`` ≤ N by its ``_validate_X``); the affinity, data it built, is converted."""
    emb = _embedding(check_affinity(A), n_components or k, solver, random_state, DENSE_MAX_N, norm)
    return kmeans_labels(emb, k, n_init=n_init, random_state=random_state)
