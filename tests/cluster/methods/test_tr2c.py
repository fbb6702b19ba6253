import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.utils.estimator_checks import parametrize_with_checks

from structlearn.cluster.methods.tr2c import TR2C, TR2CConfig, _sparse_sinkhorn
from structlearn.cluster.metrics import clustering_accuracy
from structlearn.data.sequences import MotionSequenceConfig, make_motion_sequence, segments_from_labels

# A small network and few steps keep each fit to about a second on one core.
FAST = {"n_iters": 60, "hidden_dims": (64, 64), "out_dim": 16, "rate_rows": 64}


def _sequence(shared: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    cfg = MotionSequenceConfig(
        n_frames=240,
        n_motions=3,
        n_segments=6,
        ambient_dim=24,
        min_segment=20,
        shared=shared,
        specific_dim=16,
        shared_dim=16,
        curvature=3.0,
    )
    seq = make_motion_sequence(cfg, seed=seed)
    return seq.X, seq.y


def test_beats_per_frame_kmeans_on_an_easy_sequence() -> None:
    X, y = _sequence()
    est = TR2C(3, random_state=0, **FAST).fit(X)
    acc = clustering_accuracy(y, est.labels_)
    acc_km = clustering_accuracy(y, KMeans(3, n_init=10, random_state=0).fit_predict(X))
    assert acc > 0.65 and acc > acc_km + 0.2
    assert est.labels_.shape == (240,) and set(np.unique(est.labels_)) <= {0, 1, 2}


def test_fitted_attributes_and_no_collapse() -> None:
    X, _ = _sequence()
    est = TR2C(3, random_state=1, **FAST).fit(X)
    Z = est.embedding_
    assert Z.shape == (240, 16) and np.allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    s = np.linalg.svd(Z, compute_uv=False)
    assert (s**2).cumsum()[3] / (s**2).sum() < 0.95  # the rate term keeps Z from collapsing to ≤ 4 dims
    h = est.history_
    assert all(np.isfinite(v).all() and v.shape == (60,) for v in h.values())
    assert h["compression"][:6].max() == 0 and h["compression"][-1] > 0  # 6 warm-up steps: −ρ only
    A = est.affinity_matrix_
    assert sp.issparse(A) and abs(A - A.T).max() < 1e-10 and A.diagonal().max() == 0
    assert est.n_iter_ == 60 and est.config_.warmup == 6


def test_reproducible_and_global_rng_untouched() -> None:
    X, _ = _sequence(seed=1)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = TR2C(3, random_state=5, **{**FAST, "n_iters": 20}).fit(X)
    after = torch.rand(3)
    b = TR2C(3, random_state=5, **{**FAST, "n_iters": 20}).fit(X)
    assert torch.equal(before, after)
    assert np.array_equal(a.labels_, b.labels_) and np.allclose(a.embedding_, b.embedding_)


def test_long_sequence_path_uses_windows_and_sparse_top_k() -> None:
    X, y = _sequence()
    params = {**FAST, "max_frames": 100, "batch_windows": 4, "window_len": 48, "top_k": 10}
    est = TR2C(3, random_state=0, **params).fit(X)
    A = est.affinity_matrix_
    assert A.nnz <= 240 * (2 * 10 + 2 * 2)  # top-k and its transpose, plus the temporal band
    assert clustering_accuracy(y, est.labels_) > 0.7


def test_sparse_sinkhorn_balances_rows_and_columns() -> None:
    rng = np.random.default_rng(0)
    K = sp.random(50, 50, density=0.2, random_state=0, format="csr") + sp.identity(50, format="csr")
    K.data = np.exp(rng.uniform(-3, 0, K.nnz))
    P = _sparse_sinkhorn(K, 200)
    assert np.allclose(P.sum(axis=0), 1, atol=1e-8) and np.allclose(P.sum(axis=1), 1, atol=1e-3)


def test_min_segment_post_processing_is_separate() -> None:
    X, _ = _sequence(shared=0.9)
    est = TR2C(3, min_segment=15, random_state=0, **{**FAST, "n_iters": 20}).fit(X)
    runs = segments_from_labels(est.labels_)
    assert (runs[:, 1] - runs[:, 0]).min() >= 15
    assert est.labels_raw_.shape == est.labels_.shape


@pytest.mark.parametrize(
    ("params", "zero_term"),
    [({"lambda1": 0.0}, "compression"), ({"lambda2": 0.0}, "temporal"), ({"use_rate": False}, None)],
)
def test_ablation_switches(params: dict, zero_term: str | None) -> None:
    X, _ = _sequence()
    est = TR2C(3, random_state=0, **{**FAST, "n_iters": 12, **params}).fit(X)
    if zero_term is not None:
        assert est.history_[zero_term].max() == 0
    assert np.isfinite(est.history_["loss"]).all()


def test_sklearn_conventions() -> None:
    est = TR2C(4, lambda2=3.0, random_state=0)
    assert clone(est).get_params()["lambda2"] == 3.0
    assert TR2CConfig(n_clusters=4).warmup == 50


def test_bad_inputs() -> None:
    X, _ = _sequence()
    with pytest.raises(ValueError, match="window=300 needs at least 301"):
        TR2C(3, window=300).fit(X)
    with pytest.raises(ValueError, match="fewer than the 250 required"):
        TR2C(250).fit(X)
    bad = X.copy()
    bad[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        TR2C(3).fit(bad)
    with pytest.raises(ValueError, match="warmup_iters must be <= 9"):
        TR2C(3, n_iters=10, warmup_iters=10).fit(X)
    with pytest.raises(ValueError, match="lambda1 must be >= 0"):
        TR2C(3, lambda1=-1.0).fit(X)
    with pytest.raises(ValueError, match="objective is empty"):
        TR2C(3, use_rate=False, lambda1=0.0, lambda2=0.0).fit(X)
    with pytest.raises(ValueError, match="window_len=4 must exceed window=5"):
        TR2C(3, max_frames=100, window=5, window_len=4).fit(X)
    with pytest.raises(ValueError, match="invalid device"):
        TR2C(3, device="nonsense").fit(X)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning", "ignore::FutureWarning")
@parametrize_with_checks(
    [TR2C(3, n_iters=3, warmup_iters=1, hidden_dims=(8,), out_dim=4, rate_rows=0, n_init=2)]
)
def test_sklearn_estimator_checks(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
