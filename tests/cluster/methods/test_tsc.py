import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

from structlearn.cluster.graph.temporal import temporal_laplacian
from structlearn.cluster.methods import tsc as tsc_module
from structlearn.cluster.methods.tsc import TSC, tsc_affinity, tsc_coefficients
from structlearn.cluster.metrics import clustering_accuracy
from structlearn.data.sequences import MotionSequenceConfig, make_motion_sequence


def _direct(X: np.ndarray, lam1: float, lam2: float, window: int) -> np.ndarray:
    """Solve (G + λ₁I) Z + λ₂ Z L = G as one Kronecker system (column-major vec)."""
    T = X.shape[0]
    G = X @ X.T  # XᵀX in the papers' column convention
    L = temporal_laplacian(T, window).toarray()
    eye = np.eye(T)
    M = np.kron(eye, G + lam1 * eye) + lam2 * np.kron(L.T, eye)
    return np.linalg.solve(M, G.reshape(-1, order="F")).reshape(T, T, order="F")


@pytest.mark.parametrize(("D", "lam2"), [(5, 0.7), (30, 2.0), (5, 0.0)])
def test_closed_form_matches_direct_solve(D: int, lam2: float) -> None:
    X = np.random.default_rng(0).standard_normal((18, D))  # D < T: rank-deficient Gram; D > T: full
    Z = tsc_coefficients(X, 0.3, lam2, 2)
    assert np.allclose(Z, _direct(X, 0.3, lam2, 2), atol=1e-9)


def test_closed_form_is_stationary_point_of_objective() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((15, 4))
    Xc, L = X.T, temporal_laplacian(15, 3).toarray()
    Z = tsc_coefficients(X, 0.2, 1.5, 3)
    grad = -Xc.T @ (Xc - Xc @ Z) + 0.2 * Z + 1.5 * Z @ L
    assert np.abs(grad).max() < 1e-9


def _sequence(shared: float) -> tuple[np.ndarray, np.ndarray]:
    cfg = MotionSequenceConfig(
        n_frames=240, n_motions=3, n_segments=5, ambient_dim=30, min_segment=25, shared=shared
    )
    seq = make_motion_sequence(cfg, seed=0)
    return seq.X, seq.y


def test_tsc_segments_an_easy_sequence_and_exposes_results() -> None:
    X, y = _sequence(0.3)
    est = TSC(3, lambda1=0.1, lambda2=1.0, random_state=0).fit(X)
    assert clustering_accuracy(y, est.labels_) > 0.9
    assert est.coef_.shape == (240, 240)
    A = est.affinity_matrix_
    assert sp.issparse(A) and (abs(A - A.T)).max() < 1e-12 and A.diagonal().max() == 0
    cos = TSC(3, affinity="cosine", random_state=0).fit(X).affinity_matrix_
    assert cos.min() >= 0 and cos.max() <= 1 + 1e-12


def test_sparse_top_k_path(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _sequence(0.3)
    monkeypatch.setattr(tsc_module, "DENSE_MAX_N", 100)
    est = TSC(3, top_k=20, random_state=0).fit(X)
    assert est.affinity_matrix_.nnz <= 2 * 240 * 20  # top-k rows, symmetrised
    assert clustering_accuracy(y, est.labels_) > 0.9


@pytest.mark.parametrize("kind", ["abs", "cosine"])
def test_blocked_top_k_affinity_keeps_the_largest_entries(kind: str) -> None:
    Z = np.random.default_rng(2).standard_normal((30, 30))
    dense = tsc_affinity(Z, kind).toarray()
    assert np.allclose(dense, dense.T) and np.all(np.diag(dense) == 0) and dense.min() >= 0
    full = tsc_affinity(Z, kind, top_k=29, block=7).toarray()
    assert np.allclose(full, dense)
    top = tsc_affinity(Z, kind, top_k=3, block=7).toarray()
    for i in range(30):
        kept = np.sort(np.partition(dense[i], -3)[-3:])
        assert all(np.isclose(top[i], v).any() for v in kept)


def test_bad_inputs() -> None:
    X = np.random.default_rng(0).standard_normal((5, 3))
    with pytest.raises(ValueError, match="window=5 needs at least 6"):
        TSC(2, window=5).fit(X)
    with pytest.raises(ValueError, match="fewer than the 6 required"):
        TSC(6).fit(X)
    with pytest.raises(ValueError, match="lambda1 must be > 0"):
        TSC(2, lambda1=0.0).fit(X)
    with pytest.raises(ValueError, match="unknown affinity"):
        TSC(2, affinity="rbf").fit(X)
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        TSC(2).fit(X)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning", "ignore::FutureWarning")
@parametrize_with_checks([TSC(3, n_init=2)])
def test_sklearn_estimator_checks(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
