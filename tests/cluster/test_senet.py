import numpy as np
import pytest
import scipy.sparse as sp
import torch

from structlearn.cluster import SENet
from structlearn.cluster.metrics import evaluate
from structlearn.data.synthetic import make_union_of_subspaces

SMALL = {"hidden_dims": (32, 32), "out_dim": 32, "n_init": 3, "top_k": 20, "lr": 3e-3}


@pytest.fixture(scope="module")
def uos_bases() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    return make_union_of_subspaces(3, 20, 3, 60, 0.01, return_bases=True, random_state=0)


@pytest.fixture(scope="module")
def uos(uos_bases) -> tuple[np.ndarray, np.ndarray]:
    return uos_bases[0], uos_bases[1]


@pytest.fixture(scope="module")
def fitted(uos) -> SENet:
    X, _ = uos
    return SENet(3, n_iter=200, max_train_samples=120, random_state=0, **SMALL).fit(X)


def test_recovers_easy_subspaces_and_outputs_are_sparse(fitted: SENet, uos) -> None:
    y = uos[1]
    assert evaluate(y, fitted.labels_)["acc"] > 0.95
    C = fitted.representation_matrix_
    assert sp.issparse(C) and C.shape == (180, 180)
    assert np.diff(C.indptr).max() <= 20 and C.diagonal().sum() == 0
    assert sp.issparse(fitted.affinity_matrix_)
    # Trained on 120 points, clustered all 180.
    assert fitted.train_indices_.shape == (120,) and fitted.labels_.shape == (180,)
    assert len(fitted.loss_curve_) > 0 and fitted.loss_curve_[-1] < fitted.loss_curve_[0]


def test_predict_unseen_points(fitted: SENet, uos_bases) -> None:
    _, y, bases = uos_bases
    # Fresh points of the same subspaces, never seen in fit.
    rng = np.random.default_rng(99)
    A = rng.standard_normal((3, 20, 3))
    A /= np.linalg.norm(A, axis=2, keepdims=True)
    X_new = np.concatenate([A[k] @ U.T for k, U in enumerate(bases)]).astype(np.float32)
    y_new = np.repeat(np.arange(3), 20)
    pred = fitted.predict(X_new)
    labels = fitted.labels_
    mapping = {c: np.bincount(y[labels == c]).argmax() for c in np.unique(labels)}
    assert np.mean([mapping[p] == t for p, t in zip(pred, y_new, strict=True)]) > 0.9
    C = fitted.coefficients(X_new)
    assert C.shape == (60, 180) and np.diff(C.indptr).max() <= 20


def test_deterministic_and_block_size_invariant(uos) -> None:
    X, _ = uos
    kw = {**SMALL, "n_iter": 20, "random_state": 1}
    a = SENet(3, block_size=1000, **kw).fit(X)
    b = SENet(3, block_size=7, **kw).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert abs(a.representation_matrix_ - b.representation_matrix_).max() < 1e-5


def test_key_cache_path_trains(uos) -> None:
    # Fewer fresh keys than training points: cached keys + a fresh random subset per step.
    X, y = uos
    est = SENet(3, n_iter=300, n_fresh_keys=60, key_refresh=5, random_state=0, **SMALL).fit(X)
    assert est.loss_curve_[-1] < 0.5 * est.loss_curve_[0]
    assert evaluate(y, est.labels_)["acc"] > 0.85


def test_torch_global_rng_untouched(uos) -> None:
    X, _ = uos
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    SENet(3, n_iter=2, random_state=0, **SMALL).fit(X)
    np.testing.assert_array_equal(torch.rand(3), before)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"hidden_dims": 32}, "hidden_dims"),
        ({"lmbda": 1.5}, "lmbda"),
        ({"gamma": 0}, "gamma"),
        ({"affinity": "rbf"}, "affinity"),
        ({"device": "nope"}, "device"),
        ({"top_k": 0}, "top_k"),
    ],
)
def test_bad_parameters(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SENet(2, **params).fit(np.random.default_rng(0).standard_normal((10, 3)))


def test_predict_feature_mismatch(fitted: SENet) -> None:
    with pytest.raises(ValueError, match="features"):
        fitted.predict(np.zeros((2, 5)))


def test_dead_threshold_rows_fall_back_to_unthresholded_products(uos, monkeypatch) -> None:
    """A threshold b above every |qᵀk| would leave C empty and the spectral step clustering noise."""
    from sklearn.exceptions import ConvergenceWarning

    X, y = uos
    original = SENet._train

    def train_then_kill(self, Xt, gen):  # type: ignore[no-untyped-def]
        original(self, Xt, gen)
        self.net_.threshold.data.fill_(1e6)

    ref = SENet(3, n_iter=200, max_train_samples=120, random_state=0, **SMALL).fit(X)
    assert ref.n_empty_rows_ == 0
    monkeypatch.setattr(SENet, "_train", train_then_kill)
    with pytest.warns(ConvergenceWarning, match="zeroes every coefficient of 180 of 180 rows"):
        est = SENet(3, n_iter=200, max_train_samples=120, random_state=0, **SMALL).fit(X)
    C = est.representation_matrix_
    assert est.n_empty_rows_ == 180
    assert np.all(np.diff(C.indptr) == 20) and C.diagonal().sum() == 0
    assert evaluate(y, est.labels_)["acc"] > 0.95
