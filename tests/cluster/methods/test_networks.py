import pytest
import torch

from structlearn.cluster.methods.networks import TwoHeadNet


def test_outputs_are_unit_rows_and_head_copy_makes_them_equal() -> None:
    net = TwoHeadNet(10, (16, 16), 4).eval()
    x = torch.randn(8, 10)
    Z, Y = net(x)
    assert Z.shape == Y.shape == (8, 4)
    assert torch.allclose(Z.norm(dim=1), torch.ones(8)) and torch.allclose(Y.norm(dim=1), torch.ones(8))
    assert not torch.allclose(Z, Y)
    net.copy_feature_head()
    Z, Y = net(x)
    assert torch.equal(Z, Y)


def test_bad_sizes() -> None:
    with pytest.raises(ValueError, match="in_dim"):
        TwoHeadNet(0)
    with pytest.raises(ValueError, match=r"hidden_dims\[1\]"):
        TwoHeadNet(3, (4, -1))
