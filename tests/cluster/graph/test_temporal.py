import numpy as np
import pytest
import torch

from structlearn.cluster.graph.temporal import (
    temporal_adjacency,
    temporal_laplacian,
    temporal_smoothness,
)


def test_adjacency_matches_definition() -> None:
    W = temporal_adjacency(7, 2).toarray()
    i, j = np.indices((7, 7))
    assert np.array_equal(W, ((np.abs(i - j) > 0) & (np.abs(i - j) <= 2)).astype(float))
    L = temporal_laplacian(7, 2).toarray()
    assert np.allclose(L, np.diag(W.sum(1)) - W) and np.allclose(L.sum(1), 0)
    assert temporal_laplacian(10_000, 3).nnz == 10_000 + 2 * sum(10_000 - k for k in (1, 2, 3))


@pytest.mark.parametrize("window", [1, 2, 5])
def test_smoothness_equals_dense_trace(window: int) -> None:
    Z = torch.randn(40, 6, dtype=torch.float64, requires_grad=True)
    L = torch.tensor(temporal_laplacian(40, window).toarray())
    dense = torch.trace(Z.T @ L @ Z)
    fast = temporal_smoothness(Z, window)
    assert torch.allclose(fast, dense)
    (g_fast,) = torch.autograd.grad(fast, Z)
    assert torch.allclose(g_fast, 2 * L @ Z.detach())  # ∇ tr(Zᵀ L Z) = 2 L Z


def test_smoothness_batched_windows_do_not_mix() -> None:
    Z = torch.randn(3, 20, 4, dtype=torch.float64)
    total = temporal_smoothness(Z, 2)
    assert torch.allclose(total, sum(temporal_smoothness(Z[b], 2) for b in range(3)))
    constant = torch.ones(2, 10, 3)
    assert temporal_smoothness(constant, 2).item() == 0.0


def test_window_longer_than_sequence() -> None:
    with pytest.raises(ValueError, match="a temporal window of 5 needs at least 6"):
        temporal_laplacian(5, 5)
    with pytest.raises(ValueError, match="window must be >= 1"):
        temporal_smoothness(torch.zeros(10, 2), 0)
