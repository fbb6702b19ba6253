import pytest
import torch

from structlearn.cluster.objectives.sinkhorn import sinkhorn


def test_full_iterations_converge_to_doubly_stochastic() -> None:
    S = torch.rand(20, 20, dtype=torch.float64)
    P = sinkhorn(S, eta=0.1, n_iters=200)
    assert torch.allclose(P.sum(1), torch.ones(20, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(P.sum(0), torch.ones(20, dtype=torch.float64), atol=1e-6)


def test_one_half_iteration_is_row_softmax() -> None:
    S = torch.randn(7, 5, dtype=torch.float64)
    P = sinkhorn(S, eta=0.3, half_iters=1)
    assert torch.allclose(P, torch.softmax(S / 0.3, dim=1), atol=1e-12)


def test_stable_for_tiny_temperature_and_differentiable() -> None:
    S = torch.randn(6, 6, requires_grad=True)
    P = sinkhorn(S, eta=1e-3, n_iters=5)
    assert torch.isfinite(P).all()
    P.sum().backward()
    assert torch.isfinite(S.grad).all()


@pytest.mark.parametrize(("kw", "match"), [({"eta": 0.0}, "eta"), ({"eta": 1.0, "n_iters": 0}, "n_iters")])
def test_bad_arguments(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sinkhorn(torch.ones(3, 3), **kw)
    with pytest.raises(ValueError, match="half_iters"):
        sinkhorn(torch.ones(3, 3), 1.0, half_iters=0)
