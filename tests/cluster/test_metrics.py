import numpy as np
import pytest
import scipy.sparse as sp

from structlearn.cluster.metrics import clustering_accuracy, evaluate, subspace_preserving_error


def test_accuracy_is_permutation_invariant() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_accuracy(y, np.array([2, 2, 0, 0, 1, 1])) == 1.0
    assert clustering_accuracy(y, np.array([0, 0, 0, 1, 2, 2])) == pytest.approx(5 / 6)


def test_accuracy_with_more_clusters_than_classes() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    # Hungarian matching may use each predicted cluster once: the 3rd cluster stays unmatched.
    assert clustering_accuracy(y, np.array([0, 0, 2, 1, 1, 1])) == pytest.approx(5 / 6)


def test_evaluate_keys_and_values() -> None:
    y = np.array([0, 1, 0, 1])
    out = evaluate(y, 1 - y)
    assert set(out) == {"acc", "nmi", "nmi_geometric", "ari"}
    assert out["acc"] == out["nmi"] == out["ari"] == 1.0


def test_evaluate_rejects_bad_labels() -> None:
    with pytest.raises(ValueError, match="length 2 but there are 3"):
        evaluate([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        evaluate([], [])


def test_subspace_preserving_error() -> None:
    y = np.array([0, 0, 1, 1])
    C = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 2], [1, 0, 1, 0]], dtype=float)
    # rows 0–2 preserve the subspace; row 3 puts half of its mass on the wrong cluster.
    assert subspace_preserving_error(C, y) == pytest.approx(0.5 / 4)
    assert subspace_preserving_error(sp.csr_matrix(C), y) == pytest.approx(0.5 / 4)
