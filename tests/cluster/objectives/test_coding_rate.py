import numpy as np
import pytest
import torch

from structlearn.cluster.objectives.coding_rate import coding_rate, compression_rate


def _ref_rate(Z: np.ndarray, eps_sq: float) -> float:
    n, d = Z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps_sq) * Z.T @ Z)[1]


@pytest.mark.parametrize(("n", "d"), [(50, 8), (6, 20)])  # both the d×d and the n×n form
def test_coding_rate_matches_direct_logdet(n: int, d: int) -> None:
    Z = torch.randn(n, d, dtype=torch.float64)
    assert coding_rate(Z, 0.1).item() == pytest.approx(_ref_rate(Z.numpy(), 0.1), rel=1e-10)


def test_coding_rate_is_differentiable_and_fp32_under_bf16() -> None:
    Z = torch.randn(32, 4, requires_grad=True)
    coding_rate(Z.bfloat16()).backward()
    assert Z.grad is not None and torch.isfinite(Z.grad).all()
    assert coding_rate(Z.bfloat16()).dtype == torch.float32


def test_compression_rate_hard_masks_equal_mcr2_sum() -> None:
    Z = torch.randn(30, 5, dtype=torch.float64)
    y = torch.arange(30) % 3
    M = torch.nn.functional.one_hot(y, 3).T.double()
    ref = 0.0
    for j in range(3):
        Zj = Z[y == j].numpy()
        nj = Zj.shape[0]
        ref += nj / (2 * 30) * np.linalg.slogdet(np.eye(5) + 5 / (nj * 0.5) * Zj.T @ Zj)[1]
    assert compression_rate(Z, M, 0.5).item() == pytest.approx(ref, rel=1e-10)


def test_compression_rate_ignores_empty_groups_and_checks_shapes() -> None:
    Z = torch.randn(10, 3, dtype=torch.float64)
    M = torch.zeros(2, 10, dtype=torch.float64)
    M[0] = 1.0
    assert compression_rate(Z, M).item() == pytest.approx(coding_rate(Z).item(), rel=1e-10)
    with pytest.raises(ValueError, match="membership"):
        compression_rate(Z, torch.ones(2, 9))
    with pytest.raises(ValueError, match="eps_sq"):
        coding_rate(Z, eps_sq=0.0)
