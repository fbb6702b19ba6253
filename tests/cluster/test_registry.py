import pytest
from sklearn.base import clone

from structlearn.cluster import available_methods, make_estimator
from structlearn.cluster.registry import ESTIMATORS, get_estimator_class, parse_param


def test_registry_names_and_construction() -> None:
    assert {"kmeans", "spectral", "ensc", "ssc-omp", "senet"} <= set(available_methods())
    for name in available_methods():
        est = make_estimator(name, 3, random_state=0)
        assert est.get_params()["n_clusters"] == 3
        assert est.get_params()["random_state"] == 0
        assert clone(est).get_params() == est.get_params()


def test_every_entry_imports() -> None:
    for name in ESTIMATORS:
        assert isinstance(get_estimator_class(name), type)


def test_params_are_set_and_validated() -> None:
    est = make_estimator("spectral", 2, n_neighbors=7)
    assert est.n_neighbors == 7
    with pytest.raises(ValueError, match="unknown parameter"):
        make_estimator("spectral", 2, bogus=1)
    with pytest.raises(ValueError, match="n_neighbors"):
        make_estimator("spectral", 2, n_neighbors=0)
    with pytest.raises(ValueError, match="unknown method"):
        make_estimator("no-such", 2)


def test_parse_param() -> None:
    assert parse_param("k=3") == ("k", 3)
    assert parse_param("gamma=1e2") == ("gamma", 100.0)
    assert parse_param("affinity=symmetric") == ("affinity", "symmetric")
    assert parse_param("x=None") == ("x", None)
    assert parse_param("flag=true") == ("flag", True)
    with pytest.raises(ValueError, match="key=value"):
        parse_param("novalue")
