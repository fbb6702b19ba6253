import pytest
import torch

from structlearn.cluster.objectives.regularizers import (
    BlockDiagonal,
    block_diagonal,
    ky_fan_projector,
    laplacian,
)


def _random_affinity(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.rand(n, n, generator=g, dtype=torch.float64)
    A = 0.5 * (A + A.T)
    A.fill_diagonal_(0.0)
    return A


def test_laplacian_matches_definition() -> None:
    A = _random_affinity(6)
    L = laplacian(A)
    for i in range(6):
        for j in range(6):
            expected = A[i].sum() - A[i, i] if i == j else -A[i, j]
            assert torch.isclose(L[i, j], expected)
    assert torch.allclose(L.sum(dim=1), torch.zeros(6, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_value_is_sum_of_k_smallest_eigenvalues(k: int) -> None:
    A = _random_affinity(12, seed=k)
    ref = torch.linalg.eigvalsh(laplacian(A))[:k].sum()
    assert torch.isclose(block_diagonal(A, k), ref, rtol=1e-10, atol=1e-10)


def test_gradient_equals_gradient_of_eigenvalue_sum() -> None:
    # Danskin / Ky Fan: with W fixed at the optimum, ∂tr(LW)/∂A = ∂Σλ_i(L)/∂A (simple spectrum).
    k = 3
    A1 = _random_affinity(10, seed=7).requires_grad_(True)
    block_diagonal(A1, k).backward()
    A2 = A1.detach().clone().requires_grad_(True)
    torch.linalg.eigvalsh(laplacian(A2))[:k].sum().backward()
    assert torch.allclose(A1.grad, A2.grad, atol=1e-8)


def test_projector_is_rank_k_orthogonal_projection() -> None:
    L = laplacian(_random_affinity(9))
    W = ky_fan_projector(L, 4)
    assert not W.requires_grad
    assert torch.allclose(W @ W, W, atol=1e-10)
    assert torch.isclose(torch.trace(W), torch.tensor(4.0, dtype=torch.float64))


def test_zero_iff_at_least_k_components() -> None:
    block = torch.ones(4, 4, dtype=torch.float64)
    A = torch.block_diag(block, block, block)
    A.fill_diagonal_(0.0)
    assert block_diagonal(A, 3).abs() < 1e-10
    assert block_diagonal(A, 4) > 1.0  # the 4th eigenvalue is the smallest non-zero one (= 4)
    A[0, 4] = A[4, 0] = 0.5  # join two blocks: only 2 components left
    assert block_diagonal(A, 3) > 1e-3


def test_stateful_refresh_counts_eigendecompositions() -> None:
    A = _random_affinity(8, seed=1)
    reg = BlockDiagonal(2, refresh_every=3)
    vals = [reg(A, batch_key=0) for _ in range(6)]
    assert reg.n_eigh == 2
    assert all(torch.isclose(v, vals[0]) for v in vals)
    reg(A, batch_key=1)  # new points: the stale projector must not be reused
    assert reg.n_eigh == 3
    # A stale W from an older A gives an upper bound on the true value (Ky Fan minimum).
    reg2 = BlockDiagonal(2, refresh_every=10)
    reg2(A)
    A_new = A * torch.linspace(0.5, 1.5, 8, dtype=torch.float64)[:, None]
    A_new = 0.5 * (A_new + A_new.T)
    assert reg2(A_new) >= block_diagonal(A_new, 2) - 1e-10


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="square"):
        laplacian(torch.ones(2, 3))
    with pytest.raises(ValueError, match="k must be <= 3"):
        block_diagonal(torch.ones(3, 3), 4)
    with pytest.raises(ValueError, match="refresh_every"):
        BlockDiagonal(2, refresh_every=0)
