import pytest
import torch
from torch.nn import functional as F

from structlearn.nn import norms as norms_module
from structlearn.nn.norms import LayerNorm, QKNorm, RMSNorm, add_rms_norm, make_norm, rms_norm


@pytest.mark.parametrize("shape", [(5, 16), (2, 3, 7, 8)])
def test_rmsnorm_matches_torch_forward_and_backward(shape):
    d = shape[-1]
    x = torch.randn(*shape, requires_grad=True)
    w = (torch.rand(d) + 0.5).requires_grad_()
    g = torch.randn(*shape)
    ref = F.rms_norm(x, (d,), w, 1e-6)
    out = rms_norm(x, w, 1e-6)
    torch.testing.assert_close(out, ref)
    ref_grads = torch.autograd.grad(ref, (x, w), g)
    grads = torch.autograd.grad(out, (x, w), g)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_rmsnorm_gradcheck_double():
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    w = torch.rand(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: rms_norm(a, b, 1e-6), (x, w))


def test_rmsnorm_module_output_has_unit_rms_and_gain():
    norm = RMSNorm(32)
    assert torch.equal(norm.weight, torch.ones(32))
    x = 7.0 * torch.randn(10, 32)
    y = norm(x)
    torch.testing.assert_close(y.square().mean(-1), torch.ones(10), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        norm.weight.fill_(3.0)
    torch.testing.assert_close(norm(x), 3.0 * y)


@pytest.mark.parametrize("fast", [True, False], ids=["cpu-kernel", "torch-kernel"])
def test_rmsnorm_under_bf16_autocast_normalises_in_fp32(monkeypatch, fast):
    # fast=False is the F.rms_norm path GPUs take: with a bf16 input and an fp32 gain it used to run
    # torch's mixed-dtype composite (bf16 output, dnt bf16 at 0.56 of nanoGPT's tokens/s on an H200).
    monkeypatch.setattr(norms_module, "FAST_RMS_BACKWARD", fast)
    norm = RMSNorm(8)
    x = torch.randn(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = norm(x.bfloat16())
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, norm(x.bfloat16().float()))


def test_layernorm_bias_free_by_default_and_matches_torch():
    ln = LayerNorm(12)
    assert ln.bias is None
    x = torch.randn(3, 12)
    torch.testing.assert_close(ln(x), F.layer_norm(x, (12,), torch.ones(12), None, 1e-6))
    lnb = LayerNorm(12, bias=True)
    assert lnb.bias is not None and lnb.bias.shape == (12,)


def test_make_norm_kinds_and_errors():
    assert isinstance(make_norm("rms", 4), RMSNorm)
    assert isinstance(make_norm("layer", 4), LayerNorm)
    with pytest.raises(ValueError, match="unknown norm type 'batch'"):
        make_norm("batch", 4)
    with pytest.raises(ValueError, match="dim"):
        RMSNorm(0)


def test_qknorm_is_scaled_l2_normalisation_with_gain():
    dh = 16
    qn = QKNorm(dh)
    with torch.no_grad():
        qn.weight.copy_(torch.linspace(0.5, 2.0, dh))
    q = 100.0 * torch.randn(2, 4, 5, dh)
    expected = dh**0.5 * qn.weight * q / q.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(qn(q), expected, rtol=1e-5, atol=1e-5)


def test_add_rms_norm_matches_the_unfused_sum_and_gradchecks():
    torch.manual_seed(0)
    res, x = torch.randn(3, 5, 8), torch.randn(3, 5, 8) * 3
    w = torch.rand(8) + 0.5
    ref_in = [t.clone().requires_grad_() for t in (res, x, w)]
    fused_in = [t.clone().requires_grad_() for t in (res, x, w)]
    ref = ref_in[0] + F.rms_norm(ref_in[1], (8,), ref_in[2], 1e-6)
    out = add_rms_norm(*fused_in, 1e-6)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    ref.backward(g)
    out.backward(g)
    for a, b in zip(fused_in, ref_in, strict=True):
        torch.testing.assert_close(a.grad, b.grad)
    d = [t.double().requires_grad_() for t in (res[:2, :2], x[:2, :2], w)]
    assert torch.autograd.gradcheck(lambda r, a, b: add_rms_norm(r, a, b, 1e-6), d)


def test_add_rms_norm_falls_back_when_it_cannot_fuse():
    w = torch.ones(4)
    x = torch.randn(2, 4)
    # broadcast residual (shape differs) and a bf16 residual take the unfused sum
    torch.testing.assert_close(add_rms_norm(torch.ones(4), x, w), 1 + rms_norm(x, w))
    out = add_rms_norm(torch.zeros(2, 4, dtype=torch.bfloat16), x, w)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, rms_norm(x, w))


@pytest.mark.parametrize(
    ("residual", "weight", "match"),
    [
        (torch.zeros(2, 4), torch.ones(3), "gain has shape"),
        (torch.zeros(2, 5), torch.ones(4), "residual of shape"),
        (torch.zeros(3, 2, 4), torch.ones(4), "residual of shape"),
    ],
)
def test_mismatched_shapes_are_a_one_line_value_error(residual, weight, match):
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match=match):
        add_rms_norm(residual, x, weight)
    if match == "gain has shape":
        with pytest.raises(ValueError, match=match):
            rms_norm(x, weight)
