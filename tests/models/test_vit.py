import pytest
import torch

from structlearn.models import ViT, ViTConfig


@pytest.mark.parametrize("norm", ["preln", "postln", "dnt", "dnt-full"])
def test_fashion_mnist_shapes(norm):
    cfg = ViTConfig(image_size=28, patch_size=7, n_embd=32, n_layer=2, norm=norm)
    assert cfg.n_patches == 16 and cfg.grid == (4, 4)
    model = ViT(cfg)
    x = torch.rand(5, 28, 28)
    logits, loss = model(x)
    assert logits.shape == (5, 10) and loss is None
    _, loss = model(x, torch.arange(5))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_one_dimensional_signals_and_channels():
    cfg = ViTConfig(image_size=(1, 40), patch_size=4, n_embd=16, n_head=2, n_layer=1)
    assert cfg.patch_size == (1, 4) and cfg.n_patches == 10
    model = ViT(cfg)
    assert model.pos_embed.shape == (1, 11, 16)
    assert model(torch.randn(3, 1, 40))[0].shape == (3, 10)
    rgb = ViT(ViTConfig(image_size=(8, 12), patch_size=(2, 4), in_channels=3, n_classes=4, n_embd=16))
    assert rgb(torch.rand(2, 3, 8, 12))[0].shape == (2, 4)


def test_classifier_reads_the_cls_token_only():
    model = ViT(ViTConfig(image_size=8, patch_size=2, n_embd=16, n_head=2, n_layer=1, norm="dnt"))
    x = torch.rand(1, 8, 8, requires_grad=True)
    model(x)[0].sum().backward()
    assert x.grad.abs().sum() > 0  # patches reach the CLS token through attention
    assert model.head.bias is not None and model.num_params() == sum(p.numel() for p in model.parameters())


def test_config_round_trip_through_json_lists():
    cfg = ViTConfig(image_size=(1, 40), patch_size=4)
    d = cfg.to_dict()
    d["image_size"], d["patch_size"] = list(d["image_size"]), list(d["patch_size"])
    assert ViTConfig.from_dict(d) == cfg


def test_wrong_image_shape_raises():
    model = ViT(ViTConfig(image_size=28, patch_size=7, n_embd=16))
    with pytest.raises(ValueError, match=r"images must have shape \(B, 1, 28, 28\)"):
        model(torch.rand(2, 27, 28))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(image_size=28, patch_size=5), "not divisible by the patch size"),
        (dict(image_size=(1, 40), patch_size=3), "not divisible"),
        (dict(image_size=(28, 28, 3)), "pair"),
        (dict(patch_size=0), "patch_size"),
        (dict(n_embd=66, n_head=4), "divisible by n_head"),
        (dict(norm="dnt+mid"), "unknown norm switch"),
        (dict(norm_type="rmsnorm"), "norm_type"),
        (dict(n_classes=1), "n_classes"),
        (dict(in_channels=0), "in_channels"),
        (dict(n_layer=-1), "n_layer"),
    ],
)
def test_bad_configs_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ViTConfig(**kwargs)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (
            torch.tensor([0, 12]),
            r"targets holds class ids outside \[0, n_classes=10\) \(e\.g\. 12; 1 entries\)",
        ),
        (torch.tensor([-1, 0]), r"outside \[0, n_classes=10\) \(e\.g\. -1"),
        (torch.tensor([0.0, 1.0]), "must hold integer class ids"),
        (torch.tensor([0, 1, 2]), "targets has 3 entries for a batch of 2 images"),
        (torch.zeros(2, 10, dtype=torch.long), "must be 1-D"),
    ],
)
def test_bad_targets_are_one_line_value_errors(targets, message):
    model = ViT(ViTConfig(image_size=28, patch_size=7, n_embd=16))
    with pytest.raises(ValueError, match=message):
        model(torch.rand(2, 28, 28), targets)


def test_uint8_targets_are_class_ids():
    model = ViT(ViTConfig(image_size=28, patch_size=7, n_embd=16))
    x, y = torch.rand(2, 28, 28), torch.tensor([3, 4])
    assert torch.equal(model(x, y.to(torch.uint8))[1], model(x, y)[1])
