import pytest

from structlearn.models import GPT, GPTConfig, ViT, ViTConfig
from structlearn.optim import param_groups, split_decay


def test_gpt_decay_rule():
    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=16, norm="dnt"))
    decay, no_decay = (dict(x) for x in split_decay(model))
    for b in range(2):
        for name in ("attn.wq", "attn.wk", "attn.wv", "attn.wo", "ffn.w1", "ffn.w2"):
            assert f"transformer.blocks.{b}.{name}.weight" in decay
    assert len(decay) == 12
    assert "wte.weight" in no_decay and "wpe.weight" in no_decay  # tied head = token embedding
    assert all(p.dim() == 1 for n, p in no_decay.items() if n not in ("wte.weight", "wpe.weight"))
    assert any("q_norm" in n for n in no_decay) and any("mid_attn" in n for n in no_decay)
    assert len(decay) + len(no_decay) == len(list(model.parameters()))


def test_vit_decay_rule_and_groups():
    model = ViT(ViTConfig(image_size=8, patch_size=2, n_embd=16, n_head=2, n_layer=1, norm="preln"))
    decay, no_decay = (dict(x) for x in split_decay(model))
    assert {"patch_embed.weight", "head.weight"} <= set(decay)
    assert {"patch_embed.bias", "head.bias", "cls_token", "pos_embed"} <= set(no_decay)
    groups = param_groups(model, 0.05)
    assert [g["name"] for g in groups] == ["decay", "no_decay"]
    assert groups[0]["weight_decay"] == 0.05 and groups[1]["weight_decay"] == 0.0
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_frozen_parameters_are_left_out_and_bad_decay_rejected():
    model = ViT(ViTConfig(image_size=8, patch_size=2, n_embd=16, n_head=2, n_layer=1))
    model.head.requires_grad_(False)
    names = {n for part in split_decay(model) for n, _ in part}
    assert "head.weight" not in names and "head.bias" not in names
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(model, -0.1)


def test_embedding_and_gain_learning_rates():
    """Issue 12, stop 30: SGDW's tied embedding and norm gains get their own multiples of lr."""
    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=16, norm="dnt"))
    groups = param_groups(model, 1e-3, lr=0.1, embedding_lr_scale=0.3, gain_lr_scale=10.0)
    assert [g["name"] for g in groups] == ["decay", "embedding", "no_decay"]
    assert "lr" not in groups[0] and groups[1]["lr"] == pytest.approx(0.03) and groups[2]["lr"] == 1.0
    assert {id(p) for p in groups[1]["params"]} == {id(model.wte.weight), id(model.wpe.weight)}
    assert all(p.dim() == 1 for p in groups[2]["params"])
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    # The defaults keep the two groups of before (and so the optimizer state layout of old checkpoints).
    assert [g["name"] for g in param_groups(model, 1e-3, lr=0.1)] == ["decay", "no_decay"]
    vit = ViT(ViTConfig(image_size=8, patch_size=2, n_embd=16, n_head=2, n_layer=1))
    assert [g["name"] for g in param_groups(vit, 0.05, lr=1.0, gain_lr_scale=2.0)] == ["decay", "no_decay"]
    with pytest.raises(ValueError, match="needs lr"):
        param_groups(model, 1e-3, embedding_lr_scale=0.3)
    with pytest.raises(ValueError, match="gain_lr_scale"):
        param_groups(model, 1e-3, lr=0.1, gain_lr_scale=0.0)


def test_lr_scales_reach_the_optimizer_and_refuse_muon():
    from structlearn.train.components import build_optimizer
    from structlearn.train.config import TrainConfig

    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=16, norm="dnt"))
    cfg = TrainConfig(optimizer="sgdw", lr=0.1, embedding_lr_scale=0.3, gain_lr_scale=10.0)
    lrs = {g["name"]: g["lr"] for g in build_optimizer(cfg, model).param_groups}
    assert lrs == pytest.approx({"decay": 0.1, "embedding": 0.03, "no_decay": 1.0})
    with pytest.raises(ValueError, match="does not apply to muon"):
        TrainConfig(optimizer="muon", embedding_lr_scale=0.3)
