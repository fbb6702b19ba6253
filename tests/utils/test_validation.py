import numpy as np
import pytest
import torch

from structlearn.utils.linalg import effective_rank, numerical_rank
from structlearn.utils.validation import check_choice, check_features, check_float, check_int, check_labels


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.array([1.0, 2.0]), "must be 2-D"),
        (np.zeros((0, 3)), "empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "infinite"),
        (np.ones((4, 3)), "constant"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_check_features_rejects(X: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_features(X)


def test_check_features_messages_are_one_line() -> None:
    with pytest.raises(ValueError) as info:
        check_features(np.random.default_rng(0).normal(size=(3, 2)), min_samples=5, min_samples_reason="k=5")
    assert "\n" not in str(info.value) and "k=5" in str(info.value)


def test_check_features_accepts_tensors_and_checks_width() -> None:
    X = check_features(torch.randn(5, 3))
    assert X.dtype == np.float32 and X.shape == (5, 3)
    with pytest.raises(ValueError, match="expecting 4 features"):
        check_features(X, n_features=4, estimator="Est")


def test_scalar_checks() -> None:
    assert check_int("k", 3, minimum=1) == 3
    for bad in (True, 2.0, "3"):
        with pytest.raises(ValueError, match="integer"):
            check_int("k", bad)
    with pytest.raises(ValueError, match=">= 1"):
        check_int("k", 0, minimum=1)
    with pytest.raises(ValueError, match="> 0"):
        check_float("tau", 0.0, positive=True)
    with pytest.raises(ValueError, match="finite"):
        check_float("tau", float("nan"))
    with pytest.raises(ValueError, match="unknown norm 'x'"):
        check_choice("norm", "x", ["a", "b"])


def test_check_labels() -> None:
    assert check_labels([0, 1, 1], 3).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="length 2 but there are 3"):
        check_labels([0, 1], 3)
    with pytest.raises(ValueError, match="integer"):
        check_labels([0.5, 1.0, 1.0], 3)


def test_rank_measures() -> None:
    assert effective_rank(torch.ones(4)).item() == pytest.approx(4.0)
    assert effective_rank(torch.tensor([1.0, 0.0, 0.0])).item() == pytest.approx(1.0)
    assert effective_rank(torch.zeros(3)).item() == 0.0
    assert numerical_rank(torch.tensor([10.0, 1.0, 0.1])) == 1
    assert numerical_rank(torch.tensor([1.0, 1.0, 1.0, 1.0])) == 4
    assert numerical_rank(torch.zeros(3)) == 0
