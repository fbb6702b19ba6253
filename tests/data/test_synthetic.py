import numpy as np
import pytest

from structlearn.data.synthetic import make_union_of_subspaces, principal_angles


def test_shapes_labels_and_unit_norm_without_noise() -> None:
    X, y, bases = make_union_of_subspaces(3, 10, [2, 3, 4], [5, 6, 7], return_bases=True, random_state=0)
    assert X.shape == (18, 10) and X.dtype == np.float32
    assert np.bincount(y).tolist() == [5, 6, 7]
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    for U, d in zip(bases, [2, 3, 4], strict=True):
        np.testing.assert_allclose(U.T @ U, np.eye(d), atol=1e-10)
    # Every point lies in its own subspace: residual after projection is ~0.
    for k, U in enumerate(bases):
        Xk = X[y == k].astype(np.float64)
        np.testing.assert_allclose(Xk - Xk @ U @ U.T, 0.0, atol=1e-5)


def test_noise_level_is_expected_noise_norm() -> None:
    X0, _ = make_union_of_subspaces(2, 50, 3, 2000, 0.0, random_state=1)
    X1, _ = make_union_of_subspaces(2, 50, 3, 2000, 0.3, random_state=1)
    assert np.sqrt(np.mean(np.sum((X1 - X0) ** 2, axis=1))) == pytest.approx(0.3, rel=0.05)


def test_deterministic_and_seed_dependent() -> None:
    a = make_union_of_subspaces(3, 8, 2, 10, 0.1, random_state=3)
    b = make_union_of_subspaces(3, 8, 2, 10, 0.1, random_state=3)
    c = make_union_of_subspaces(3, 8, 2, 10, 0.1, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])


def test_shared_dim_gives_zero_principal_angles() -> None:
    _, _, B = make_union_of_subspaces(3, 20, 4, 10, shared_dim=2, return_bases=True, random_state=0)
    ang = principal_angles(B[0], B[1])
    np.testing.assert_allclose(ang[:2], 0.0, atol=1e-6)
    assert ang[2] > 0.1


def test_max_angle_bounds_pairwise_angles() -> None:
    _, _, B = make_union_of_subspaces(4, 30, 3, 10, max_angle=10.0, return_bases=True, random_state=0)
    _, _, R = make_union_of_subspaces(4, 30, 3, 10, return_bases=True, random_state=0)
    small = max(np.rad2deg(principal_angles(B[i], B[j])).max() for i in range(4) for j in range(i + 1, 4))
    rand = max(np.rad2deg(principal_angles(R[i], R[j])).max() for i in range(4) for j in range(i + 1, 4))
    assert small <= 20.0 + 1e-6
    assert rand > 40.0


def test_nonlinear_leaves_the_subspaces() -> None:
    X, y = make_union_of_subspaces(2, 6, 2, 50, nonlinear=True, random_state=0)
    X = X.astype(np.float64)
    assert X.shape == (100, 6) and np.isfinite(X).all()
    Xk = X[y == 0]
    # Not contained in any 2-D linear subspace: the 3rd singular value is far from zero.
    s = np.linalg.svd(Xk, compute_uv=False)
    assert s[2] / s[0] > 0.01  # the linear model gives ~1e-8 here


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"subspace_dim": 11}, "exceeds ambient_dim"),
        ({"subspace_dim": [2, 3]}, "n_subspaces=3"),
        ({"noise": -1.0}, "noise"),
        ({"shared_dim": 2, "max_angle": 5.0}, "at most one"),
        ({"shared_dim": 2}, "shared_dim"),
        ({"max_angle": 100.0}, "max_angle"),
        ({"n_per_subspace": 0}, "n_per_subspace"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"n_subspaces": 3, "ambient_dim": 10, "subspace_dim": 2, "n_per_subspace": 5} | kwargs
    with pytest.raises(ValueError, match=match):
        make_union_of_subspaces(**args)
