import math

import numpy as np
import pytest
import torch
from torch import nn

from structlearn.diagnostics.attention import (
    attention_entropy,
    attention_erank,
    attention_maps,
    qk_diagnostics,
    qk_singular_values,
    spectral_energy_concentration,
    spectral_norms,
)


class TinyMHA(nn.Module):
    """Stand-in with the MultiHeadAttention interface the diagnostics read."""

    def __init__(self, d: int = 12, n_head: int = 3) -> None:
        super().__init__()
        self.n_head, self.head_dim = n_head, d // n_head
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.capture_attention = False
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = (w(x).view(B, T, self.n_head, -1).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        logits = (q @ k.transpose(-1, -2) / self.head_dim**0.5).masked_fill(~mask, -math.inf)
        A = logits.softmax(-1)
        if self.capture_attention:
            self.last_attention = A.detach()
        return self.wo((A @ v).transpose(1, 2).reshape(B, T, d))


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([TinyMHA(), TinyMHA()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return x


def test_entropy_against_direct_computation() -> None:
    A = torch.randn(2, 3, 5, 5).softmax(-1)
    a = A.double().numpy()
    direct = np.zeros(3)
    for h in range(3):
        rows = [-(a[b, h, i] * np.log(a[b, h, i])).sum() for b in range(2) for i in range(5)]
        direct[h] = np.mean(rows)
    np.testing.assert_allclose(attention_entropy(A).numpy(), direct, rtol=1e-5)
    T = 7
    uniform = torch.full((1, 1, T, T), 1 / T)
    assert attention_entropy(uniform).item() == pytest.approx(math.log(T), rel=1e-6)
    one_hot = torch.eye(T).expand(1, 2, T, T)
    assert torch.all(attention_entropy(one_hot) == 0)


def test_entropy_and_erank_with_causal_mask() -> None:
    T = 6
    causal = torch.tril(torch.ones(T, T))
    causal = (causal / causal.sum(-1, keepdim=True)).expand(1, 1, T, T)
    expected = np.mean([math.log(i + 1) for i in range(T)])
    assert attention_entropy(causal).item() == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(attention_erank(causal)).all()


def test_erank_separates_benign_from_malignant_collapse() -> None:
    T = 8
    benign = torch.eye(T)[torch.randperm(T)].expand(1, 1, T, T)  # sparse, full rank
    malignant = torch.zeros(1, 1, T, T)
    malignant[..., 0] = 1.0  # every query on the same key: sparse and rank 1
    assert attention_entropy(benign).item() == 0 and attention_entropy(malignant).item() == 0
    assert attention_erank(benign).item() == pytest.approx(T, rel=1e-6)
    assert attention_erank(malignant).item() == pytest.approx(1.0, rel=1e-6)


def test_qk_singular_values_match_the_dense_svd() -> None:
    d, H = 16, 4
    wq, wk = torch.randn(d, d), torch.randn(d, d)
    sv = qk_singular_values(wq, wk, H)
    dh = d // H
    assert sv.shape == (H, dh)
    for h in range(H):
        M = wq[h * dh : (h + 1) * dh].T.double() @ wk[h * dh : (h + 1) * dh].double()  # d×d, rank dh
        dense = torch.linalg.svdvals(M)
        torch.testing.assert_close(sv[h].double(), dense[:dh], rtol=1e-5, atol=1e-8)
        assert dense[dh:].abs().max() < 1e-8 * dense[0]
        sec = spectral_energy_concentration(sv[h : h + 1], (1, 2, 3))
        e = dense.square()
        direct = torch.stack([e[:s].sum() / e.sum() for s in (1, 2, 3)])
        torch.testing.assert_close(sec[0].double(), direct, rtol=1e-5, atol=0)


def test_sec_edge_cases_and_bad_input() -> None:
    assert spectral_energy_concentration(torch.tensor([3.0, 0.0, 0.0]), (1, 3)).tolist() == [1.0, 1.0]
    assert spectral_energy_concentration(torch.ones(4), (1, 2, 8)).tolist() == [0.25, 0.5, 1.0]
    assert torch.isnan(spectral_energy_concentration(torch.zeros(3))).all()
    with pytest.raises(ValueError, match="s must be positive"):
        spectral_energy_concentration(torch.ones(3), (0,))
    with pytest.raises(ValueError, match="n_head=3 does not divide"):
        qk_singular_values(torch.randn(8, 8), torch.randn(8, 8), 3)
    with pytest.raises(ValueError, match="equal shape"):
        qk_singular_values(torch.randn(8, 8), torch.randn(4, 8), 2)
    with pytest.raises(ValueError, match="attention maps must have shape"):
        attention_entropy(torch.ones(3, 3))


def test_spectral_norms_exact() -> None:
    a, b, c = torch.randn(5, 7), torch.randn(5, 7), torch.randn(3, 2, 2)
    out = spectral_norms([("a", a), ("b", b), ("c", c), ("bias", torch.randn(5))])
    assert set(out) == {"a", "b", "c"}
    assert out["a"] == pytest.approx(torch.linalg.matrix_norm(a, 2).item(), rel=1e-5)
    assert out["c"] == pytest.approx(torch.linalg.matrix_norm(c.reshape(3, 4), 2).item(), rel=1e-5)


def test_attention_maps_restore_state_and_model_diagnostics() -> None:
    model = TwoLayer().train()
    x = torch.randn(2, 5, 12)
    maps = attention_maps(model, lambda m: m(x))
    assert len(maps) == 2 and maps[0].shape == (2, 3, 5, 5)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 3, 5))
    assert model.training
    assert all(not m.capture_attention and m.last_attention is None for m in model.layers)
    qk = qk_diagnostics(model)
    assert qk["sigma1"].shape == (2, 3) and qk["sec"].shape == (2, 3, 3) and qk["erank"].shape == (2, 3)
    with pytest.raises(ValueError, match="no attention module"):
        attention_maps(nn.Linear(2, 2), lambda m: None)


def test_non_finite_inputs_give_nan_not_errors() -> None:
    A = torch.full((1, 2, 3, 3), 1 / 3)
    A[0, 1, 0, 0] = math.nan
    er = attention_erank(A)
    assert math.isfinite(er[0].item()) and math.isnan(er[1].item())
    wq = torch.randn(8, 8)
    wq[0, 0] = math.inf
    sv = qk_singular_values(wq, torch.randn(8, 8), 2)
    assert torch.isnan(sv[0]).all() and torch.isfinite(sv[1]).all()
    out = spectral_norms([("a", wq), ("b", torch.ones(8, 8))])
    assert math.isnan(out["a"]) and out["b"] == pytest.approx(8.0)
