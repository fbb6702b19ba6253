import argparse
from pathlib import Path
from typing import Any

import pytest
import torch

import structlearn.train.extensions as extensions
from structlearn.cli import main
from structlearn.optim.factory import OPTIMIZERS
from structlearn.train.checkpoint import load_checkpoint
from structlearn.train.config import TrainConfig
from structlearn.train.extensions import TrainExtension, extension_hooks, register_extension
from structlearn.train.metrics_log import read_metrics


class EveryStep:
    def __init__(self, scale: float) -> None:
        self.scale = scale

    def after_step(self, trainer: Any, step: int) -> dict[str, float]:
        return {"ext/scaled_step": self.scale * step}


class ScaleExtension(TrainExtension):
    name = "scale"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("scale extension")
        group.add_argument("--scale", type=float, default=None, help="log scale × step")
        # Not --tau: the spectral-bound extension (discovered from structlearn.optim) owns that flag.
        group.add_argument("--fake-tau", type=float, default=None, help="an optimizer keyword")

    def optimizer_kwargs(self, args: argparse.Namespace) -> dict[str, Any]:
        self.seen_optimizer = args.optimizer  # config flags arrive filled in (default or checkpoint)
        return {} if args.fake_tau is None else {"tau": args.fake_tau}

    def extras(self, args: argparse.Namespace) -> dict[str, Any]:
        return {} if args.scale is None else {"scale": args.scale}

    def hooks(self, config: TrainConfig) -> list[Any]:
        settings = config.extras.get(self.name)
        return [EveryStep(settings["scale"])] if settings else []


TAUS: list[float] = []


def adamw_tau(params: Any, *, tau: float, **kw: Any) -> torch.optim.Optimizer:
    """A registered optimizer taking an extra keyword, as the warmup-free optimizers do."""
    TAUS.append(tau)
    return OPTIMIZERS["adamw"](params, **kw)


@pytest.fixture
def scale_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extensions, "_REGISTERED", {})
    monkeypatch.setitem(OPTIMIZERS, "adamw_tau", adamw_tau)
    register_extension(ScaleExtension())


def test_extension_flags_extras_and_hooks_survive_resume(
    scale_extension: None, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", "--corpus", str(corpus), "--block-size", "8", "--steps", "4", "--log-every", "2"]
    argv += ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--optim", "adamw_tau"]
    argv += ["--eval-batches", "1", "--no-progress", "--out", str(out), "--scale", "0.5", "--fake-tau", "0.1"]
    assert "--scale" in _help(capsys)
    assert main([*argv, "--stop-after", "2"]) == 0
    ckpt = load_checkpoint(out / "checkpoint.safetensors")
    assert ckpt["train_config"]["extras"] == {"scale": {"scale": 0.5}}
    assert ckpt["train_config"]["optimizer_kwargs"] == {"tau": 0.1}
    assert main(["train", "--resume", str(out / "checkpoint.safetensors"), "--no-progress"]) == 0
    assert extensions._REGISTERED["scale"].seen_optimizer == "adamw_tau"  # from the checkpoint
    assert TAUS[-2:] == [0.1, 0.1]  # the resumed run rebuilt the optimizer with the same keyword
    values = [r["ext/scaled_step"] for r in read_metrics(out / "metrics.jsonl")]
    assert values == [0.5, 1.0, 1.5, 2.0]  # one record per step: the hook runs in the resumed run too


def _help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    return capsys.readouterr().out


def test_builtin_extensions_are_an_explicit_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # No module scanning (issue 16): the built-ins are listed in train.extensions, registered ones added.
    assert [e.name for e in extensions.BUILTIN_EXTENSIONS] == ["spectral_bound", "stability"]
    monkeypatch.setattr(extensions, "_REGISTERED", {})
    register_extension(ScaleExtension())
    assert [e.name for e in extensions.extensions()] == ["spectral_bound", "stability", "scale"]
    hooks = extension_hooks(TrainConfig(extras={"scale": {"scale": 2.0}}))
    assert len(hooks) == 1 and hooks[0].scale == 2.0
    with pytest.raises(ValueError, match="TrainExtension"):
        register_extension(object())  # type: ignore[arg-type]
