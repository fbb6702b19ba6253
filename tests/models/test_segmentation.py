"""Segmentation models: DEPICT-SA/CA (arXiv 2411.03033), Segmenter mask transformer, linear head."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from structlearn.models.segmentation import (
    DECODERS,
    DepictDecoder,
    SegConfig,
    SegmenterDecoder,
    SegModel,
    decoder_flops,
)
from structlearn.models.vit import ViTConfig
from structlearn.nn.depict import SubspaceAttention


def _enc(norm: str = "preln") -> ViTConfig:
    return ViTConfig(image_size=16, patch_size=4, in_channels=3, n_layer=1, n_head=2, n_embd=32, norm=norm)


def _n(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("decoder", DECODERS)
def test_shapes_loss_and_gradients(decoder: str) -> None:
    torch.manual_seed(0)
    model = SegModel(_enc(), SegConfig(n_classes=5, decoder=decoder, n_head=2, head_dim=8, ca_head_dim=4))
    x = torch.randn(3, 3, 16, 16)
    y = torch.randint(0, 5, (3, 16, 16))
    y[:, 0] = 255  # ignored row
    logits, loss = model(x, y)
    assert logits.shape == (3, 5, 16, 16)
    assert loss is not None and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_param_counts_match_spec_table() -> None:
    # Spec §1.3 table (C = 150, h = 3, p = 100, 3 MSSA layers; CA: 3 MSCA layers, p = 50; Segmenter 2 blocks).
    d = 192
    sa = DepictDecoder(d, SegConfig(n_classes=150, n_head=3, head_dim=100), cross=False)
    ca = DepictDecoder(d, SegConfig(n_classes=150, n_head=3, head_dim=100, ca_head_dim=50), cross=True)
    sg = SegmenterDecoder(d, SegConfig(n_classes=150, decoder="segmenter"))  # the default: 2 blocks
    # closed forms: SA = 3(300d + 1 + 2d) + 2d + 150d + 300
    assert _n(sa) == 3 * (300 * d + 1 + 2 * d) + 2 * d + 150 * d + 300 == 203_439
    assert _n(ca) == _n(sa) + 3 * (150 * d + 1 + 2 * d) + 2 * d == 291_378
    block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (8 * d * d + 5 * d)
    assert _n(sg) == (d * d + d) + 2 * block + 150 * d + 2 * d * d + 2 * d + 300 == 1_029_996
    assert (
        round(_n(sa) / 1e6, 2) == 0.20 and round(_n(ca) / 1e6, 2) == 0.29 and round(_n(sg) / 1e6, 2) == 1.03
    )


def test_mssa_matches_per_head_equation() -> None:
    """Z + η Σ_k softmax(W_k W_kᵀ/√p) W_k P_k with W_k = LN(Z) P_kᵀ, computed head by head."""
    torch.manual_seed(1)
    layer = SubspaceAttention(12, n_head=3, head_dim=4)
    z = torch.randn(2, 7, 12)
    ln = F.layer_norm(z, (12,), layer.norm.weight, layer.norm.bias)
    ref = z.clone()
    for k in range(3):
        Pk = layer.proj[4 * k : 4 * (k + 1)]
        W = ln @ Pk.T
        A = torch.softmax(W @ W.transpose(1, 2) / 2.0, dim=-1)
        ref = ref + layer.step * (A @ W @ Pk)
    torch.testing.assert_close(layer(z), ref, rtol=1e-5, atol=1e-5)


def test_msca_matches_equation_and_queries_not_normalised() -> None:
    torch.manual_seed(2)
    layer = SubspaceAttention(8, n_head=2, head_dim=4)
    z, q = torch.randn(2, 6, 8), torch.randn(2, 3, 8)
    ln = F.layer_norm(z, (8,), layer.norm.weight, layer.norm.bias)
    ref = q.clone()
    for k in range(2):
        Pk = layer.proj[4 * k : 4 * (k + 1)]
        W, U = ln @ Pk.T, q @ Pk.T
        ref = ref + layer.step * (torch.softmax(U @ W.transpose(1, 2) / 2.0, dim=-1) @ W @ Pk)
    torch.testing.assert_close(layer(z, queries=q), ref, rtol=1e-5, atol=1e-5)


def test_masks_are_layernorm_over_classes_of_cosine() -> None:
    torch.manual_seed(3)
    dec = DepictDecoder(16, SegConfig(n_classes=4, n_head=2, head_dim=4), cross=False)
    z = torch.randn(2, 9, 16)
    patches, classes = dec.refine(z)
    cos = F.normalize(patches, dim=-1) @ F.normalize(classes, dim=-1).transpose(1, 2)
    m = dec(z)
    torch.testing.assert_close(m, F.layer_norm(cos, (4,), dec.mask_norm.weight, dec.mask_norm.bias))
    assert cos.abs().max() <= 1 + 1e-6
    torch.testing.assert_close(m.mean(-1), torch.zeros(2, 9), atol=1e-5, rtol=0)


def test_depict_has_no_ffn_no_bias_in_projection_and_learnable_step() -> None:
    dec = DepictDecoder(16, SegConfig(n_classes=4, n_head=2, head_dim=4), cross=True)
    names = [n for n, _ in dec.named_parameters()]
    assert not any("mlp" in n or "proj.bias" in n for n in names)
    assert sum(n.endswith("step") for n in names) == 3 + 3
    gram = dec.sa[0].head_gram_error()
    assert gram.shape == (2,) and torch.all(gram > 0)


def test_dnt_encoder_works() -> None:
    model = SegModel(_enc("dnt"), SegConfig(n_classes=3, n_head=2, head_dim=8))
    logits, _ = model(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 3, 16, 16)


def test_flops_positive_and_depict_cheaper_than_segmenter_at_small_head_width() -> None:
    kw = dict(n_classes=11, n_head=2, head_dim=16, ca_head_dim=8)
    f = {dec: decoder_flops(SegConfig(decoder=dec, **kw), 64, 64) for dec in DECODERS}
    assert f["linear"] == 2 * 64 * 64 * 11
    assert 0 < f["depict-sa"] < f["segmenter"]
    assert 0 < f["depict-ca"] < f["segmenter"]


@pytest.mark.parametrize(
    "kw",
    [dict(decoder="mask"), dict(n_classes=1), dict(n_classes=256), dict(n_head=0), dict(seg_dropout=1.0)],
)
def test_bad_config(kw: dict) -> None:
    with pytest.raises(ValueError):
        SegConfig(**kw)


def test_bad_targets_shape() -> None:
    model = SegModel(_enc(), SegConfig(n_classes=3, decoder="linear"))
    with pytest.raises(ValueError, match="targets must have shape"):
        model(torch.randn(2, 3, 16, 16), torch.zeros(2, 8, 8, dtype=torch.long))


@pytest.mark.parametrize("width", [200, 224, 96, 64, 192])
def test_segmenter_decoder_takes_any_width(width: int) -> None:
    """Segmenter uses d/64 heads; widths 64 does not divide (224, 200) once raised a reshape error."""
    dec = SegmenterDecoder(width, SegConfig(n_classes=3, decoder="segmenter"))
    heads = dec.blocks[0].n_head
    assert width % heads == 0 and heads <= max(1, width // 64)
    assert dec(torch.randn(2, 5, width)).shape == (2, 5, 3)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (torch.full((2, 16, 16), 7), r"targets holds class ids .*outside \[0, n_classes=5\).*e\.g\. 7"),
        (torch.full((2, 16, 16), -1), r"outside \[0, n_classes=5\).*e\.g\. -1.*255 is the ignore index"),
        (torch.zeros(2, 16, 16), "must hold integer"),
        (torch.zeros(2, 16, dtype=torch.long), "must be 3-D"),
        ([[0]], "must be a torch.Tensor"),
    ],
)
def test_bad_segmentation_targets_are_one_line_value_errors(targets: object, message: str) -> None:
    model = SegModel(_enc(), SegConfig(n_classes=5, decoder="linear"))
    with pytest.raises(ValueError, match=message):
        model(torch.randn(2, 3, 16, 16), targets)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_head": 0}, "n_head"), ({"head_dim": -1}, "head_dim"), ({"dim": 0}, "dim")],
)
def test_subspace_attention_rejects_bad_sizes(kwargs: dict[str, int], message: str) -> None:
    args = {"dim": 8, "n_head": 2, "head_dim": 4} | kwargs
    with pytest.raises(ValueError, match=message):
        SubspaceAttention(**args)


def test_subspace_attention_rejects_bad_inputs() -> None:
    layer = SubspaceAttention(8, n_head=2, head_dim=4)
    with pytest.raises(ValueError, match=r"z must be a \(batch, tokens, 8\) tensor, got \(2, 5, 6\)"):
        layer(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"z has dtype torch\.float64"):
        layer(torch.randn(2, 5, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="queries has batch 3, z has 2"):
        layer(torch.randn(2, 5, 8), torch.randn(3, 4, 8))
    with pytest.raises(ValueError, match="queries must be"):
        layer(torch.randn(2, 5, 8), torch.randn(2, 4, 7))
    assert layer(torch.randn(2, 5, 8), torch.randn(2, 4, 8)).shape == (2, 4, 8)
