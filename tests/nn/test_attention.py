import math

import pytest
import torch

from structlearn.nn.attention import MultiHeadAttention


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("qk_norm", [False, True])
def test_sdpa_and_explicit_paths_agree(causal, qk_norm):
    attn = MultiHeadAttention(32, 4, causal=causal, qk_norm=qk_norm)
    x = torch.randn(3, 9, 32)
    y_fast = attn(x)
    assert attn.last_attention is None
    attn.capture_attention = True
    y_slow = attn(x)
    torch.testing.assert_close(y_fast, y_slow, rtol=1e-5, atol=1e-6)
    att = attn.last_attention
    assert att is not None and att.shape == (3, 4, 9, 9) and not att.requires_grad
    torch.testing.assert_close(att.sum(-1), torch.ones(3, 4, 9))
    if causal:
        assert torch.all(att.triu(1) == 0)


def test_separate_bias_free_projections_all_get_gradients():
    attn = MultiHeadAttention(16, 2, qk_norm=True)
    for name in ("wq", "wk", "wv", "wo"):
        lin = getattr(attn, name)
        assert isinstance(lin, torch.nn.Linear) and lin.bias is None and lin.weight.shape == (16, 16)
    attn(torch.randn(2, 5, 16)).square().sum().backward()
    for name in ("wq", "wk", "wv", "wo"):
        assert getattr(attn, name).weight.grad.abs().sum() > 0
    assert attn.n_head == 2 and attn.head_dim == 8 and attn.qk_norm


def test_matches_hand_written_attention():
    torch.manual_seed(1)
    attn = MultiHeadAttention(12, 3, causal=True)
    x = torch.randn(2, 6, 12)
    H, dh = 3, 4
    q = (x @ attn.wq.weight.T).view(2, 6, H, dh).transpose(1, 2)
    k = (x @ attn.wk.weight.T).view(2, 6, H, dh).transpose(1, 2)
    v = (x @ attn.wv.weight.T).view(2, 6, H, dh).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / math.sqrt(dh)
    logits = logits + torch.full((6, 6), float("-inf")).triu(1)
    y = (logits.softmax(-1) @ v).transpose(1, 2).reshape(2, 6, 12) @ attn.wo.weight.T
    torch.testing.assert_close(attn(x), y, rtol=1e-5, atol=1e-6)


def test_causal_future_tokens_do_not_change_the_past():
    attn = MultiHeadAttention(16, 4, causal=True, qk_norm=True)
    x = torch.randn(1, 8, 16)
    x2 = x.clone()
    x2[:, 5:] = torch.randn(1, 3, 16)
    torch.testing.assert_close(attn(x)[:, :5], attn(x2)[:, :5])
    assert not torch.allclose(attn(x)[:, 5:], attn(x2)[:, 5:])


def test_qk_norm_bounds_the_logits_whatever_the_weight_scale():
    attn = MultiHeadAttention(32, 4, qk_norm=True)
    plain = MultiHeadAttention(32, 4, qk_norm=False)
    with torch.no_grad():
        for m in (attn, plain):
            m.wq.weight.mul_(1000.0)
            m.wk.weight.mul_(1000.0)
        attn.q_norm.weight.fill_(1.5)
        attn.k_norm.weight.fill_(2.0)
    x = torch.randn(2, 10, 32)
    bound = math.sqrt(attn.head_dim) * 1.5 * 2.0

    def max_logit(m):
        B, T, _ = x.shape
        q = m.wq(x).view(B, T, 4, 8).transpose(1, 2)
        k = m.wk(x).view(B, T, 4, 8).transpose(1, 2)
        if m.qk_norm:
            q, k = m.q_norm(q), m.k_norm(k)
        return ((q @ k.transpose(-1, -2)) * m.scale).abs().max().item()

    assert max_logit(attn) <= bound * (1 + 1e-5)
    assert max_logit(plain) > 100 * bound


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="n_head"):
        MultiHeadAttention(32, 0)
