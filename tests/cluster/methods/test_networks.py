import numpy as np
import pytest
import torch

from structlearn.cluster import PRODSC, TR2C
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


def test_bad_sizes_are_rejected_where_they_enter() -> None:
    """The networks trust their sizes; the estimators' configs reject bad ones before building them."""
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"hidden_dims\[1\]"):
        TR2C(2, hidden_dims=(4, -1)).fit(X)
    with pytest.raises(ValueError, match="out_dim"):
        TR2C(2, out_dim=0).fit(X)
    with pytest.raises(ValueError, match=r"hidden_dims\[0\]"):
        PRODSC(2, hidden_dims=(0,)).fit(X)
    with pytest.raises(ValueError, match="out_dim"):
        PRODSC(2, out_dim=0).fit(X)
