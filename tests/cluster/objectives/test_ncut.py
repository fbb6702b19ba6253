import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from structlearn.cluster.objectives.ncut import (
    VOL_EPS,
    gaussian_affinity,
    hard_ncut,
    median_distance,
    ncut_descent,
    ncut_loss,
)


def _affinity(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    W = torch.rand(n, n, generator=g, dtype=torch.float64)
    W = 0.5 * (W + W.T)
    W.fill_diagonal_(0.0)
    return W


def _reference(W: np.ndarray, P: np.ndarray, gamma: float) -> tuple[float, float]:
    """Direct computation with an explicit Laplacian and per-cluster quotients.

    vol_j = dᵀP_j (the official code's volume), which equals P_jᵀ D P_j only for hard memberships.
    """
    d = W.sum(1)
    D = np.diag(d)
    L = D - W
    k = P.shape[1]
    spectral = sum(P[:, j] @ L @ P[:, j] / (d @ P[:, j] + VOL_EPS) for j in range(k))
    H = P / np.sqrt(d @ P + VOL_EPS)
    orth = np.linalg.norm(H.T @ D @ H - np.eye(k), "fro") / k
    return spectral, spectral + gamma / 2 * orth


def test_matches_direct_computation_for_soft_memberships() -> None:
    W = _affinity(15)
    P = torch.softmax(torch.randn(15, 4, dtype=torch.float64), dim=1)
    out = ncut_loss(W, P, gamma=20.0)
    spec, total = _reference(W.numpy(), P.numpy(), 20.0)
    assert math.isclose(out.spectral.item(), spec, rel_tol=1e-10)
    assert math.isclose(out.total.item(), total, rel_tol=1e-10)


def test_hard_memberships_give_ncut_value_and_zero_penalty() -> None:
    W = _affinity(12, seed=3)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    P = torch.nn.functional.one_hot(y, 3).double()
    out = ncut_loss(W, P, gamma=80.0)
    ncut = 0.0
    for j in range(3):
        inside = y == j
        cut = W[inside][:, ~inside].sum()
        vol = W[inside].sum()
        ncut += (cut / vol).item()
    assert math.isclose(out.spectral.item(), ncut, rel_tol=1e-6)
    assert out.orthogonality.item() < 1e-6


def test_penalty_is_unsquared_frobenius_over_k() -> None:
    # Uniform memberships: HᵀDH = (1/k)·11ᵀ, so ‖HᵀDH − I‖_F = sqrt(k − 1) exactly (up to eps).
    W = _affinity(10, seed=5)
    k = 4
    P = torch.full((10, k), 1.0 / k, dtype=torch.float64)
    out = ncut_loss(W, P, gamma=2.0)
    assert math.isclose(out.orthogonality.item(), math.sqrt(k - 1) / k, rel_tol=1e-6)


def test_loss_is_differentiable_in_memberships() -> None:
    W = _affinity(8)
    logits = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    ncut_loss(W, torch.softmax(logits, 1)).total.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_gaussian_affinity_full_kernel_matches_formula() -> None:
    X = torch.randn(7, 3, dtype=torch.float64)
    W = gaussian_affinity(X, sigma=1.5, n_neighbors=None)
    i, j = 2, 5
    expected = math.exp(-((X[i] - X[j]).square().sum().item()) / (2 * 1.5**2))
    assert math.isclose(W[i, j].item(), expected, rel_tol=1e-12)
    assert torch.all(torch.diagonal(W) == 0) and torch.allclose(W, W.T)


def test_median_bandwidth_and_knn_sparsification() -> None:
    X = torch.randn(30, 4, dtype=torch.float64)
    dist = [torch.dist(X[a], X[b]).item() for a in range(30) for b in range(a + 1, 30)]
    assert math.isclose(median_distance(X).item(), float(np.median(dist)), rel_tol=1e-12)
    W = gaussian_affinity(X, n_neighbors=5)
    assert torch.allclose(W, W.T)
    nnz = (W > 0).sum(1)
    assert nnz.min() >= 5 and nnz.max() < 29
    # The kept entries are half the kernel (one direction) or the full kernel (both directions).
    K = gaussian_affinity(X, n_neighbors=None)
    ratio = W[W > 0] / K[W > 0]
    assert torch.all(
        torch.isclose(ratio, torch.tensor(0.5, dtype=torch.float64))
        | torch.isclose(ratio, torch.ones(1, dtype=torch.float64))
    )


def test_flat_kernel_pitfall_on_unit_rows() -> None:
    X = torch.nn.functional.normalize(torch.randn(50, 8, dtype=torch.float64), dim=1)
    W = gaussian_affinity(X, sigma=3.0, n_neighbors=None)
    off = W[~torch.eye(50, dtype=torch.bool)]
    assert off.min() >= math.exp(-2 / 9) - 1e-12  # σ = 3 on unit rows: nearly flat
    Wm = gaussian_affinity(X, sigma="median", n_neighbors=None)
    assert Wm[~torch.eye(50, dtype=torch.bool)].min() < 0.5


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="sigma"):
        gaussian_affinity(torch.randn(5, 2), sigma=0.0)
    with pytest.raises(ValueError, match="unknown sigma"):
        gaussian_affinity(torch.randn(5, 2), sigma="mean")
    with pytest.raises(ValueError, match="n_neighbors"):
        gaussian_affinity(torch.randn(5, 2), n_neighbors=0)
    with pytest.raises(ValueError, match="gamma"):
        ncut_loss(torch.ones(3, 3), torch.ones(3, 2), gamma=-1.0)
    with pytest.raises(ValueError, match="P must have shape"):
        ncut_loss(torch.ones(3, 3), torch.ones(4, 2))


def _cliques(sizes: list[int], bridges: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Disjoint cliques plus ``bridges`` random cross edges; returns (A, clique labels)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    A = (truth[:, None] == truth[None, :]).astype(np.float64)
    np.fill_diagonal(A, 0.0)
    i, j = rng.integers(0, len(truth), (2, bridges))
    A[i, j] = A[j, i] = 1.0
    return sp.csr_matrix(A), truth


def test_ncut_descent_repairs_perturbed_labels_and_never_raises_the_ncut() -> None:
    A, truth = _cliques([30, 40, 50], bridges=20, seed=0)
    rng = np.random.default_rng(1)
    noisy = truth.copy()
    flip = rng.random(truth.size) < 0.3
    noisy[flip] = rng.integers(0, 3, flip.sum())
    labels, score = ncut_descent(A, noisy, 3)
    assert score == pytest.approx(hard_ncut(A, labels, 3))
    assert score <= hard_ncut(A, noisy, 3)
    assert score == pytest.approx(hard_ncut(A, truth, 3))  # the clique partition is the optimum here
    for sigma in (0.0, 1.0):  # never above the start, also from the optimum itself
        _, s = ncut_descent(A, truth, 3, sigma=sigma)
        assert s <= hard_ncut(A, truth, 3) + 1e-12


def test_ncut_descent_rejects_bad_labels() -> None:
    A, truth = _cliques([5, 5], bridges=0, seed=0)
    with pytest.raises(ValueError, match="labels must be"):
        ncut_descent(A, truth + 1, 2)
    with pytest.raises(ValueError, match="labels must be"):
        ncut_descent(A, truth[:-1], 2)
    with pytest.raises(ValueError, match="sigma"):
        ncut_descent(A, truth, 2, sigma=-1.0)


def test_ncut_descent_rejects_bad_affinities() -> None:
    A, truth = _cliques([5, 5], bridges=0, seed=0)
    bad = A.toarray()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="finite, non-negative"):
        ncut_descent(sp.csr_matrix(bad), truth, 2)
    with pytest.raises(ValueError, match="square"):
        ncut_descent(sp.csr_matrix((0, 0)), np.zeros(0, dtype=int), 2)
    with pytest.raises(ValueError, match="square"):
        ncut_descent(A[:, :-1], truth, 2)
