import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_blobs
from sklearn.neighbors import kneighbors_graph

from structlearn.cluster.metrics import evaluate
from structlearn.cluster.spectral import check_affinity, spectral_clustering, spectral_embedding


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
