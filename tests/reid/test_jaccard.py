import numpy as np
import pytest
import scipy.sparse as sp

from structlearn.reid.jaccard import jaccard_distance


def dense_reference(X: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """The definition, written with dense arrays and per-point loops (spec segmentation_reid.md §2.2)."""
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    n = len(X)
    d = 2 - 2 * X @ X.T
    rank = np.argsort(d, axis=1, kind="stable")

    def recip(i: int, k: int) -> np.ndarray:
        fwd = rank[i, : k + 1]
        return np.array([j for j in fwd if i in rank[j, : k + 1]])

    V = np.zeros((n, n))
    kh = int(np.around(k1 / 2))
    for i in range(n):
        R = recip(i, k1)
        exp = list(R)
        for c in R:
            Rc = recip(c, kh)
            if len(np.intersect1d(Rc, R)) > 2 / 3 * len(Rc):
                exp.extend(Rc)
        exp = np.unique(exp)
        w = np.exp(-d[i, exp])
        V[i, exp] = w / w.sum()
    if k2 > 1:
        V = np.stack([V[rank[i, :k2]].mean(axis=0) for i in range(n)])
    m = np.minimum(V[:, None, :], V[None, :, :]).sum(axis=2)
    return np.clip(1 - m / (2 - m), 0, None)


def _clusters(n_per: int = 15, n_id: int = 8, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_id, dim))
    return (centres[:, None, :] + 0.6 * rng.normal(size=(n_id, n_per, dim))).reshape(-1, dim)


@pytest.mark.parametrize(("k1", "k2"), [(20, 6), (7, 1), (5, 3)])
def test_sparse_jaccard_equals_the_dense_definition(k1: int, k2: int) -> None:
    X = _clusters()
    D = jaccard_distance(X, k1, k2)
    assert sp.issparse(D)
    C = D.tocoo()
    full = np.ones(D.shape)  # absent pairs share no support: d_J = 1
    full[C.row, C.col] = C.data
    ref = dense_reference(X, k1, k2)
    np.testing.assert_allclose(full, ref, atol=1e-6)


def test_chunking_does_not_change_the_result() -> None:
    X = _clusters(seed=1)
    a = jaccard_distance(X, 10, 4).toarray()
    b = jaccard_distance(X, 10, 4, pair_chunk=7).toarray()
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_max_distance_keeps_only_close_pairs_and_the_diagonal_for_dbscan() -> None:
    from sklearn.cluster import DBSCAN

    X = _clusters(n_per=12, n_id=6, dim=32, seed=2)
    y = np.repeat(np.arange(6), 12)
    D = jaccard_distance(X, 12, 4, max_distance=0.6)
    assert D.data.max() <= 0.6
    assert np.all(D.diagonal() == 0) and D[np.arange(len(X)), np.arange(len(X))].size == len(X)
    labels = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(D)
    from structlearn.cluster import evaluate

    assert evaluate(y, labels)["ari"] > 0.95


def test_duplicate_rows_and_bad_input() -> None:
    X = _clusters(n_per=5, n_id=3)
    X = np.vstack([X, X[:3]])  # exact duplicates
    D = jaccard_distance(X, 4, 2)
    assert np.allclose(D.diagonal(), 0.0)
    with pytest.raises(ValueError, match="all-zero"):
        jaccard_distance(np.vstack([X, np.zeros(X.shape[1])]), 4, 2)
    with pytest.raises(ValueError, match="k1"):
        jaccard_distance(X, 0, 2)
    with pytest.raises(ValueError, match="NaN"):
        jaccard_distance(np.full((4, 3), np.nan), 2, 1)
