import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_blobs
from sklearn.neighbors import kneighbors_graph

from structlearn.cluster.graph.spectral import check_affinity, spectral_clustering, spectral_embedding
from structlearn.cluster.metrics import evaluate


def _block_graph(sizes: list[int], seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    blocks = [sp.csr_matrix(rng.uniform(0.5, 1.0, (s, s))) for s in sizes]
    y = np.repeat(np.arange(len(sizes)), sizes)
    return sp.block_diag(blocks).tocsr(), y


@pytest.mark.parametrize("solver", ["dense", "arpack", "lobpcg"])
def test_disconnected_blocks_are_recovered_by_every_solver(solver: str) -> None:
    A, y = _block_graph([40, 50, 60])
    labels = spectral_clustering(A, 3, solver=solver, random_state=0)
    assert evaluate(y, labels)["acc"] == 1.0


def test_knn_graph_on_blobs_large_n_uses_sparse_path() -> None:
    X, y = make_blobs(3000, n_features=8, centers=5, cluster_std=1.5, random_state=1)
    A = kneighbors_graph(X, 10, include_self=False)
    labels = spectral_clustering(A, 5, random_state=0)  # N > DENSE_MAX_N: ARPACK on the sparse matrix
    assert evaluate(y, labels)["acc"] > 0.99


def test_embedding_rows_are_unit_norm_and_more_components_allowed() -> None:
    A, _ = _block_graph([20, 20])
    U = spectral_embedding(A, 5, random_state=0)
    assert U.shape == (40, 5)
    assert np.allclose(np.linalg.norm(U, axis=1), 1.0)


def test_affinity_validation() -> None:
    with pytest.raises(ValueError, match="square"):
        check_affinity(np.ones((3, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        check_affinity(-np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        check_affinity(np.full((2, 2), np.nan))
    A = check_affinity(np.array([[0.0, 2.0], [0.0, 0.0]]))
    assert A.toarray().tolist() == [[0.0, 1.0], [1.0, 0.0]]  # symmetrised


def test_isolated_nodes_do_not_crash() -> None:
    A, _ = _block_graph([10, 10])
    A = sp.block_diag([A, sp.csr_matrix((1, 1))]).tocsr()
    labels = spectral_clustering(A, 2, random_state=0)
    assert labels.shape == (21,)


# --- Robustness to repeated eigenvalues (issue 10, defect 1) -------------------------------------------


def _components_knn(n: int, n_comp: int, seed: int = 0, k: int = 10) -> tuple[sp.csr_matrix, np.ndarray]:
    """Union of 4-dim subspaces in R^32; within each subspace a kNN graph (a connected component each,
    as the kNN graph of well-separated subspaces is), in shuffled node order."""
    from structlearn.cluster.graph.affinity import knn_graph
    from structlearn.data.synthetic import make_union_of_subspaces

    X, y = make_union_of_subspaces(n_comp, 32, 4, n // n_comp, noise=0.05, random_state=seed)
    order = np.argsort(y, kind="stable")
    blocks = [knn_graph(X[order][y[order] == c], k) for c in range(n_comp)]
    A = sp.block_diag(blocks).tocsr()
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return A[inv][:, inv].tocsr(), y


def _subspace_gap(U: np.ndarray, V: np.ndarray) -> float:
    """sin of the largest principal angle between the column spans of U and V."""
    Qu, _ = np.linalg.qr(U)
    Qv, _ = np.linalg.qr(V)
    s = np.linalg.svd(Qu.T @ Qv, compute_uv=False)
    return float(np.sqrt(max(0.0, 1.0 - s.min() ** 2)))


@pytest.mark.parametrize("n", [1_000, 10_000, 50_000])
def test_multi_component_knn_graph_is_clustered_exactly_at_every_n(n: int) -> None:
    """10 components, 10 clusters: the top eigenvalue 1 has multiplicity 10. ARPACK on the whole graph
    returned only 5 of its copies at N = 10k (ACC 0.75–0.86); the embedding must span exactly the
    component indicators (the dense reference, known in closed form) at every N."""
    from scipy.sparse.csgraph import connected_components

    A, y = _components_knn(n, 10)
    n_comp, comp = connected_components(A, directed=False)
    assert n_comp == 10  # the premise: exactly one component per subspace
    U = spectral_embedding(A, 10, random_state=0)
    ref = np.eye(10)[comp]  # indicator vectors span the top eigenspace of every normalised adjacency
    assert _subspace_gap(U, ref) < 1e-6
    labels = spectral_clustering(A, 10, random_state=0)
    assert evaluate(y, labels)["acc"] == 1.0


@pytest.mark.parametrize("solver", ["arpack", "lobpcg", "amg"])
def test_iterative_solvers_match_dense_reference_on_multi_component_graph(solver: str) -> None:
    """More eigenvectors than components (k ≥ 7 > 5): non-trivial eigenpairs are computed per component
    by the iterative solver (forced with a small dense_max_n) and must match a dense eigh."""
    pytest.importorskip("pyamg") if solver == "amg" else None
    A, _ = _components_knn(3_000, 5, seed=1)
    M = check_affinity(A)
    d = np.asarray(M.sum(axis=1)).ravel()
    Md = (M.multiply(1 / np.sqrt(np.outer(d, d)))).toarray()
    vals, V = np.linalg.eigh(Md)
    gaps = vals[-7:-15:-1] - vals[-8:-16:-1]  # gap after the top 7, 8, ..., 14
    k = 7 + int(np.argmax(gaps))
    assert gaps.max() > 1e-3  # a gap, so the reference subspace is well defined
    U = spectral_embedding(A, k, solver=solver, random_state=0, dense_max_n=200)
    # Row normalisation is a diagonal rescaling: compare spans after undoing it on the reference side.
    ref = V[:, -k:]
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    assert _subspace_gap(U, ref) < 1e-4


def test_more_components_than_clusters_warns_and_keeps_largest() -> None:
    from structlearn.cluster.graph.spectral import DisconnectedGraphWarning

    A, y = _block_graph([60, 50, 40, 5])
    with pytest.warns(DisconnectedGraphWarning, match="4 connected components"):
        labels = spectral_clustering(A, 3, random_state=0)
    assert evaluate(y[:150], labels[:150])["acc"] == 1.0


def test_connected_graph_large_n_matches_dense_and_sklearn() -> None:
    """A connected kNN graph (overlapping blobs) above the dense threshold: the AMG/LOBPCG path gives
    the same top eigenspace as the dense solver."""
    X, _ = make_blobs(2_500, n_features=6, centers=6, cluster_std=2.5, random_state=3)
    A = kneighbors_graph(X, 10, include_self=False)
    U_it = spectral_embedding(A, 6, random_state=0)  # 2,500 > DENSE_MAX_N: iterative
    U_de = spectral_embedding(A, 6, solver="dense", random_state=0)
    assert _subspace_gap(U_it, U_de) < 1e-3


def test_unknown_or_unavailable_solver_is_a_clear_error() -> None:
    A, _ = _block_graph([10, 10])
    with pytest.raises(ValueError, match="eigen_solver"):
        spectral_embedding(A, 2, solver="magic")  # type: ignore[arg-type]


def test_degree_norm_is_scikit_learns_embedding() -> None:
    # norm="degree" is scikit-learn's spectral_embedding (D^{-1/2}u): same column space; the default
    # row normalisation is not (it rescales rows, which k-means weighs differently: issue 10,
    # Fashion-MNIST-70k scattering ACC 0.598 rows vs 0.640 for scikit-learn's SpectralClustering).
    from sklearn.manifold import spectral_embedding as sk_embedding

    from structlearn.cluster.graph.affinity import knn_graph

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 1.0, size=(150, 5)) for c in (0.0, 2.5, 5.0)])
    A = knn_graph(X, 10)
    ref = sk_embedding(A, n_components=3, drop_first=False, random_state=0)

    def sin_angle(E: np.ndarray) -> float:
        Q1, Q2 = np.linalg.qr(E)[0], np.linalg.qr(ref)[0]
        return float(np.sqrt(max(0.0, 1 - np.linalg.svd(Q1.T @ Q2, compute_uv=False).min() ** 2)))

    assert sin_angle(spectral_embedding(A, 3, norm="degree", solver="dense")) < 1e-5
    assert sin_angle(spectral_embedding(A, 3, solver="dense")) > 1e-2
    with pytest.raises(ValueError, match="norm"):
        spectral_embedding(A, 3, norm="l2")
