"""Input conventions shared by every clustering estimator (found by a bad-input audit, stop 30)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from structlearn.cluster.methods.baselines import KMeansClustering, SpectralKNN
from structlearn.cluster.methods.neuncut import NeuNcut
from structlearn.cluster.methods.prodsc import PRODSC
from structlearn.cluster.methods.senet import SENet


class Frame:
    """The two things a pandas DataFrame shows an estimator: ``columns`` and ``__array__``."""

    def __init__(self, X: np.ndarray, columns: list[str]) -> None:
        self._X, self.columns = X, columns

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self._X if dtype is None else self._X.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._X.shape


def _blobs(n: int = 60) -> np.ndarray:
    return make_blobs(n, n_features=3, centers=3, random_state=0)[0].astype(np.float32)


@pytest.mark.parametrize("est", [KMeansClustering(3, random_state=0), SpectralKNN(3, random_state=0)])
def test_feature_names_are_recorded_and_checked(est) -> None:
    X = _blobs()
    est.fit(Frame(X, ["a", "b", "c"]))
    assert list(est.feature_names_in_) == ["a", "b", "c"]
    same = est.predict(Frame(X, ["a", "b", "c"]))
    with pytest.raises(ValueError, match=r"feature names differ.*'a' \(fit\) vs 'c'"):
        est.predict(Frame(X[:, ::-1], ["c", "b", "a"]))
    with pytest.warns(UserWarning, match="X has no feature names"):
        np.testing.assert_array_equal(est.predict(X), same)
    est.fit(X)  # refitted without names: nothing recorded, nothing checked
    assert not hasattr(est, "feature_names_in_")
    est.predict(Frame(X, ["x", "y", "z"]))


def test_integer_column_names_record_nothing() -> None:
    est = KMeansClustering(3, random_state=0).fit(Frame(_blobs(), [0, 1, 2]))  # type: ignore[list-item]
    assert not hasattr(est, "feature_names_in_")


DEEP = [
    lambda **kw: SENet(3, n_iter=5, hidden_dims=(8,), out_dim=8, **kw),
    lambda **kw: PRODSC(3, n_epochs=3, hidden_dims=(8,), out_dim=4, warmup_steps=0, **kw),
    lambda **kw: NeuNcut(3, n_epochs=2, hidden_dims=(8,), **kw),
]


@pytest.mark.parametrize("make", DEEP)
def test_deep_methods_refuse_bad_seeds_and_subsets_before_training(make) -> None:
    """Both once failed only after training, in the final k-means step or deep inside sklearn."""
    X = _blobs()
    with pytest.raises(ValueError, match=r"random_state must be in \[0, 2\*\*32 - 1\]"):
        make(random_state=2**32).fit(X)
    with pytest.raises(ValueError, match="max_train_samples=2 is below n_clusters=3"):
        make(random_state=0, max_train_samples=2).fit(X)


@pytest.mark.parametrize("make", [lambda: SpectralKNN(2, random_state=0), lambda: NeuNcut(2, n_neighbors=10)])
def test_a_complete_neighbour_graph_warns(make) -> None:
    """With n ≤ n_neighbors the kNN graph is complete: the labels carry no structure."""
    X = _blobs(9)
    with pytest.warns(UserWarning, match="n_neighbors=10 but the data has only 9 samples"):
        make().fit(X)
