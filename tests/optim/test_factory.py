import pytest
import torch

from structlearn.optim import OPTIMIZERS, SGDW, make_optimizer


def test_known_optimizers_and_settings():
    w = [torch.nn.Parameter(torch.ones(2))]
    adam = make_optimizer("adamw", w, lr=1e-3, weight_decay=0.1, betas=(0.8, 0.9), eps=1e-6)
    assert isinstance(adam, torch.optim.AdamW)
    g = adam.param_groups[0]
    assert g["betas"] == (0.8, 0.9) and g["eps"] == 1e-6 and g["weight_decay"] == 0.1 and g["foreach"]
    sgd = make_optimizer("sgdw", w, lr=0.5, weight_decay=1e-4, momentum=0.8)
    assert isinstance(sgd, SGDW) and sgd.param_groups[0]["momentum"] == 0.8
    assert {"adamw", "sgdw"} <= set(OPTIMIZERS)


def test_group_weight_decay_overrides_the_default():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = make_optimizer(
        "sgdw", [{"params": [a], "weight_decay": 0.0}, {"params": [b]}], lr=1.0, weight_decay=0.3
    )
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.3]


def test_unknown_name_and_bad_values():
    w = [torch.nn.Parameter(torch.ones(2))]
    with pytest.raises(ValueError, match="unknown optimizer 'adam'; choose one of: adamw, "):
        make_optimizer("adam", w, lr=1e-3, weight_decay=0.0)
    with pytest.raises(ValueError, match="lr"):
        make_optimizer("adamw", w, lr=0.0, weight_decay=0.0)
    with pytest.raises(ValueError, match="betas"):
        make_optimizer("adamw", w, lr=1e-3, weight_decay=0.0, betas=(0.9, 1.0))
