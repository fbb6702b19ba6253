import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F

from structlearn.nn.block import NORM_SCHEMES, Block, FeedForward, NormScheme, resolve_scheme
from structlearn.nn.norms import LayerNorm, QKNorm, RMSNorm
from structlearn.nn.transformer import Transformer

D, H = 16, 4


def _rms(x, w):
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-6) * w


def _attn(block, h, qk_norm):
    """Reference causal attention written from the equations, with the block's weights."""
    a = block.attn
    B, T, _ = h.shape
    dh = D // H
    q = (h @ a.wq.weight.T).view(B, T, H, dh).transpose(1, 2)
    k = (h @ a.wk.weight.T).view(B, T, H, dh).transpose(1, 2)
    v = (h @ a.wv.weight.T).view(B, T, H, dh).transpose(1, 2)
    if qk_norm:
        q = math.sqrt(dh) * a.q_norm.weight * q / q.norm(dim=-1, keepdim=True)
        k = math.sqrt(dh) * a.k_norm.weight * k / k.norm(dim=-1, keepdim=True)
    logits = q @ k.transpose(-1, -2) / math.sqrt(dh) + torch.full((T, T), float("-inf")).triu(1)
    return (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D) @ a.wo.weight.T


def _ffn(block, h):
    return F.gelu(h @ block.ffn.w1.weight.T) @ block.ffn.w2.weight.T


def _randomise_gains(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, RMSNorm | LayerNorm | QKNorm):
                m.weight.uniform_(0.5, 1.5)


def test_preln_block_matches_reference_and_keeps_the_residual_stream_unnormalised():
    block = Block(D, H, "preln", causal=True)
    _randomise_gains(block)
    x = 5.0 * torch.randn(2, 7, D)  # large scale: a block that normalised the residual would shrink it
    x1 = x + _attn(block, _rms(x, block.pre_attn.weight), qk_norm=False)
    expected = x1 + _ffn(block, _rms(x1, block.pre_ffn.weight))
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_dnt_block_matches_reference():
    block = Block(D, H, "dnt", causal=True)
    _randomise_gains(block)
    x = 3.0 * torch.randn(2, 7, D)
    a = _attn(block, _rms(x, block.pre_attn.weight), qk_norm=True)
    x1 = x + _rms(a, block.mid_attn.weight)
    expected = x1 + _rms(_ffn(block, x1), block.mid_ffn.weight)  # S5: no PreNorm before the FFN
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_dnt_full_and_postln_blocks_match_reference():
    full = Block(D, H, "dnt-full", causal=True)
    _randomise_gains(full)
    x = torch.randn(2, 5, D)
    x1 = x + _rms(_attn(full, _rms(x, full.pre_attn.weight), True), full.mid_attn.weight)
    expected = x1 + _rms(_ffn(full, _rms(x1, full.pre_ffn.weight)), full.mid_ffn.weight)
    torch.testing.assert_close(full(x), expected, rtol=1e-5, atol=1e-5)

    post = Block(D, H, "postln", causal=True)
    _randomise_gains(post)
    x1 = _rms(x + _attn(post, x, False), post.post_attn.weight)
    expected = _rms(x1 + _ffn(post, x1), post.post_ffn.weight)
    torch.testing.assert_close(post(x), expected, rtol=1e-5, atol=1e-5)


def _count_norm_modules(module):
    return sum(isinstance(m, RMSNorm | LayerNorm | QKNorm) for m in module.modules())


@pytest.mark.parametrize(
    ("name", "per_block", "outer"),
    [("preln", 2, 1), ("postln", 2, 0), ("s2", 4, 1), ("s3", 4, 2), ("dnt", 5, 2), ("dnt-full", 6, 2)],
)
@pytest.mark.parametrize("norm_type", ["rms", "layer"])
def test_norm_counts_per_preset(name, per_block, outer, norm_type):
    trunk = Transformer(3, D, H, name, norm_type=norm_type)
    assert _count_norm_modules(trunk) == 3 * per_block + outer == NORM_SCHEMES[name].count_norms(3)
    kinds = {type(m) for m in trunk.modules() if isinstance(m, RMSNorm | LayerNorm)}
    assert kinds == ({RMSNorm} if norm_type == "rms" else {LayerNorm})


def test_presets_follow_the_paper_settings():
    s = NORM_SCHEMES
    assert s["dnt"].enabled == ("input_norm", "pre_norm_attn", "qk_norm", "mid_norm", "final_norm")
    assert s["dnt-full"] == dataclasses.replace(s["dnt"], pre_norm_ffn=True)
    assert s["s2"] == dataclasses.replace(s["preln"], qk_norm=True)
    assert s["s3"] == dataclasses.replace(s["s2"], input_norm=True)
    assert s["s1"] is s["preln"] and s["s4"] is s["dnt-full"] and s["s5"] is s["dnt"]
    assert not s["postln"].pre_norm_attn and s["postln"].post_norm


def test_resolve_scheme_modifiers_and_errors():
    assert resolve_scheme("preln+qk_norm+input_norm") == NORM_SCHEMES["s3"]
    assert resolve_scheme("dnt+no_mid_norm") == dataclasses.replace(NORM_SCHEMES["dnt"], mid_norm=False)
    custom = NormScheme(mid_norm=True)
    assert resolve_scheme(custom) is custom
    with pytest.raises(ValueError, match="unknown norm scheme 'nope'"):
        resolve_scheme("nope")
    with pytest.raises(ValueError, match="unknown norm switch 'mid'"):
        resolve_scheme("dnt+mid")
    with pytest.raises(ValueError, match="non-empty"):
        resolve_scheme("")
    with pytest.raises(ValueError, match="must be a bool"):
        NormScheme(qk_norm=1)


def test_feedforward_relu_is_positively_homogeneous_and_bias_free():
    ffn = FeedForward(D, activation="relu")
    assert ffn.w1.bias is None and ffn.w2.bias is None and ffn.w1.weight.shape == (4 * D, D)
    x = torch.randn(3, D)
    torch.testing.assert_close(ffn(7.0 * x), 7.0 * ffn(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="activation"):
        FeedForward(D, activation="tanh")


def test_dnt_block_is_invariant_to_the_scale_of_its_sublayer_weights():
    """MidNorm removes W_v/W_o and W_1/W_2 magnitudes from the block output (Prop. 3 of the paper)."""
    block = Block(D, H, "dnt", activation="relu")
    x = torch.randn(2, 6, D)
    y = block(x)
    with torch.no_grad():
        for lin in (block.attn.wv, block.attn.wo, block.ffn.w1, block.ffn.w2, block.attn.wq, block.attn.wk):
            lin.weight.mul_(10.0)
    torch.testing.assert_close(block(x), y, rtol=1e-4, atol=1e-4)


def test_fused_midnorm_residual_matches_the_unfused_block(monkeypatch):
    import structlearn.nn.block as block_mod
    from structlearn.nn.norms import rms_norm

    torch.manual_seed(0)
    block = Block(D, H, "dnt", causal=True, dropout=0.3)
    _randomise_gains(block)
    x = 3.0 * torch.randn(2, 7, D)

    def grads(module):
        module.zero_grad()
        xin = x.clone().requires_grad_()
        out = module(xin)
        out.backward(torch.ones_like(out))
        return out.detach(), xin.grad, [p.grad.clone() for p in module.parameters()]

    block.eval()  # dropout inactive: the fused path
    fused = grads(block)
    monkeypatch.setattr(block_mod, "add_rms_norm", lambda r, a, w, eps: r + rms_norm(a, w, eps))
    unfused = grads(block)
    for a, b in zip(fused[:2] + tuple(fused[2]), unfused[:2] + tuple(unfused[2]), strict=True):
        torch.testing.assert_close(a, b)
    # training with dropout takes the unfused path (dropout sits between MidNorm and the add)
    calls = []
    monkeypatch.setattr(block_mod, "add_rms_norm", lambda *a: calls.append(1))
    block.train()
    block(x)
    assert calls == []
