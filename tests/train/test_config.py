import pytest

from structlearn.train.config import TrainConfig


def test_defaults_depend_on_optimizer_and_dataset() -> None:
    c = TrainConfig()
    assert (c.resolved_lr, c.resolved_weight_decay, c.resolved_patch_size) == (1e-3, 0.1, 2)
    s = c.replace(optimizer="sgdw", dataset="fashion_mnist")
    assert (s.resolved_lr, s.resolved_weight_decay, s.resolved_patch_size) == (0.3, 5e-4, 7)
    assert s.replace(lr=0.05).resolved_lr == 0.05
    assert c.resolved_eval_batch_size == c.batch_size


def test_roundtrip_through_dict() -> None:
    c = TrainConfig(task="image", betas=(0.8, 0.9), grad_clip=None, optimizer_kwargs={"tau": 0.1})
    d = c.to_dict()
    assert d["betas"] == [0.8, 0.9]
    assert TrainConfig.from_dict(d) == c
    with pytest.raises(ValueError, match="unknown TrainConfig fields: bogus"):
        TrainConfig.from_dict({**d, "bogus": 1})


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"task": "seg"}, "unknown task"),
        ({"norm": "batchnorm"}, "unknown norm scheme"),
        ({"optimizer": "lion"}, "unknown optimizer"),
        ({"norm_type": "group"}, "unknown norm_type"),
        ({"n_embd": 100, "n_head": 3}, "not divisible"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"lr": -1.0}, "lr must be > 0"),
        ({"momentum": 1.0}, "momentum must be < 1"),
        ({"betas": (0.9, 1.5)}, "betas"),
        ({"warmup_steps": 10, "steps": 10}, "warmup_steps 10 must be smaller"),
        ({"grad_clip": 0.0}, "grad_clip must be > 0"),
        ({"device": "tpu"}, "device must be"),
        ({"label_noise": 1.5}, "label_noise"),
        ({"steps": 2.5}, "steps must be an integer"),
        ({"bf16": "yes"}, "bf16 must be"),
        ({"nesterov": True}, "nesterov needs optimizer sgdw or sgdw2"),  # the default optimizer is adamw
        ({"nesterov": True, "optimizer": "sgdw", "momentum": 0.0}, "with momentum > 0"),
        ({"nesterov": 1, "optimizer": "sgdw"}, "nesterov must be true or false"),
        ({"seed": 2**64}, "seed must be <= 18446744073709551615"),  # was torch's overflow message
    ],
)
def test_invalid_settings_raise_one_line(changes: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        TrainConfig(**changes)
    assert "\n" not in str(info.value)


def test_package_exports_resolve_lazily() -> None:
    import structlearn.train as train

    assert train.TrainConfig is TrainConfig
    assert train.Trainer.__name__ == "Trainer"
    with pytest.raises(AttributeError):
        _ = train.NoSuchThing


@pytest.mark.parametrize("optimizer", ["sgdw", "sgdw2"])
def test_nesterov_reaches_the_sgdw_optimizers(optimizer: str) -> None:
    """``TrainConfig(nesterov=True)`` (CLI ``--nesterov``) builds SGDW / SGDW² with Nesterov momentum; the
    default stays heavy-ball momentum."""
    import argparse

    import torch

    from structlearn.cli.train import config_from_args, register
    from structlearn.train.components import build_optimizer

    model = torch.nn.Linear(4, 3)
    opt = build_optimizer(TrainConfig(optimizer=optimizer, nesterov=True), model)
    assert all(g["nesterov"] for g in opt.param_groups)
    plain = build_optimizer(TrainConfig(optimizer=optimizer), model)
    assert not any(g["nesterov"] for g in plain.param_groups)
    parser = register(argparse.ArgumentParser().add_subparsers())
    config, _ = config_from_args(parser.parse_args(["--optimizer", optimizer, "--nesterov", "--out", "x"]))
    assert config.nesterov is True and config.optimizer == optimizer
