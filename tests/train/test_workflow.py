"""A nanoGPT user's workflow (issue 12 item 2): presets, gradient accumulation, whole-split evaluation,
--compile's fallback, ``structlearn sample``, uint8 token ids."""

import argparse
import math
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from structlearn.cli import build_parser, main
from structlearn.cli.train import config_from_args
from structlearn.models import GPT, GPTConfig
from structlearn.train.config import PRESETS, TrainConfig, preset_config
from structlearn.train.engine import Trainer
from tests.train.conftest import TINY


def lm_config(corpus: Path, **kw: Any) -> TrainConfig:
    base = dict(
        **TINY,
        corpus=str(corpus),
        block_size=16,
        batch_size=8,
        steps=4,
        eval_every=0,
        eval_batches=2,
        log_every=1,
        out_dir=None,
        progress=False,
        grad_clip=None,
    )
    return TrainConfig(**{**base, **kw})


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["train", *argv])


def test_presets_set_nanogpt_defaults_and_explicit_flags_win() -> None:
    cfg, _ = config_from_args(_args("--preset", "nanogpt-shakespeare-char-cpu"))
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.batch_size) == (4, 4, 128, 64, 12)
    assert (cfg.steps, cfg.dropout, cfg.lr, cfg.betas, cfg.weight_decay) == (
        2000,
        0.0,
        1e-3,
        (0.9, 0.99),
        0.1,
    )
    assert (cfg.warmup_steps, cfg.grad_clip, cfg.corpus, cfg.norm) == (100, 1.0, "shakespeare", "preln")
    assert cfg.resolved_lr * cfg.min_lr_frac == pytest.approx(1e-4)  # nanoGPT's min_lr
    gpu = preset_config("nanogpt-shakespeare-char")
    assert (gpu.n_layer, gpu.n_embd, gpu.block_size, gpu.batch_size, gpu.dropout, gpu.steps) == (
        6,
        384,
        256,
        64,
        0.2,
        5000,
    )
    cfg, _ = config_from_args(
        _args("--preset", "nanogpt-shakespeare-char-cpu", "--norm", "dnt", "--lr", "0.003", "--steps", "500")
    )
    assert (cfg.norm, cfg.lr, cfg.steps, cfg.n_embd) == ("dnt", 0.003, 500, 128)
    assert set(PRESETS) == {"nanogpt-shakespeare-char", "nanogpt-shakespeare-char-cpu"}


def test_preset_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--preset", "nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "invalid choice" in err
    ckpt = tmp_path / "c.safetensors"
    assert main(["train", "--preset", "nanogpt-shakespeare-char-cpu", "--resume", str(ckpt)]) == 2
    assert "--preset starts a new run" in capsys.readouterr().err


@pytest.mark.parametrize("optimizer", ["sgdw", "adamw"])
def test_grad_accum_equals_one_batch_n_times_larger(corpus: Path, optimizer: str) -> None:
    big = Trainer(lm_config(corpus, batch_size=8, grad_accum=1, optimizer=optimizer, lr=0.05))
    acc = Trainer(lm_config(corpus, batch_size=4, grad_accum=2, optimizer=optimizer, lr=0.05))
    r_big, r_acc = big.fit(), acc.fit()
    for (name, a), b in zip(big.model.state_dict().items(), acc.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert r_big.history[-1]["train_loss"] == pytest.approx(r_acc.history[-1]["train_loss"], rel=1e-5)
    assert r_big.tokens_per_s and acc.task.items_per_step == big.task.items_per_step == 8 * 16
    # Without the 1/N scaling SGDW would take a twice larger step: the test can tell.
    unscaled = Trainer(lm_config(corpus, batch_size=8, grad_accum=1, optimizer=optimizer, lr=0.1))
    unscaled.fit()
    if optimizer == "sgdw":
        w = "transformer.blocks.0.attn.wq.weight"
        sd_u, sd_a = unscaled.model.state_dict(), acc.model.state_dict()
        key = w if w in sd_a else next(k for k in sd_a if k.endswith("weight") and sd_a[k].dim() == 2)
        assert not torch.allclose(sd_u[key], sd_a[key], atol=1e-6)


def test_eval_full_covers_the_whole_split_deterministically(corpus: Path) -> None:
    t = Trainer(lm_config(corpus, eval_full=True, eval_batch_size=5, steps=2))
    t.fit()
    val = t.task.data.val
    T = 16
    n_win = (len(val) - 1) // T
    assert sum(len(x) for x in t.task.val_x) == n_win and len(t.task.val_x[-1]) <= 5
    first = t.evaluate()["val_loss"]
    assert t.evaluate()["val_loss"] == first  # deterministic
    # Reference: every window in one batch, mean over all predicted tokens.
    starts = torch.arange(n_win) * T
    w = val[starts[:, None] + torch.arange(T + 1)].long()
    t.model.eval()
    with torch.no_grad():
        _, ref = t.model(w[:, :-1], w[:, 1:])
    assert first == pytest.approx(float(ref), rel=1e-5)
    assert len(t.task.val_x[0][0]) == T and torch.equal(t.task.val_y[0][0][:-1], t.task.val_x[0][0][1:])


def test_compile_flag_is_accepted_and_falls_back_with_one_warning(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_compile(model: Any, *a: Any, **k: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("no C++ compiler found\nsecond line")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = Trainer(lm_config(corpus, compile=True)).fit()
    msgs = [str(w.message) for w in caught if "torch.compile" in str(w.message)]
    assert result.status == "completed" and len(msgs) == 1 and "\n" not in msgs[0]
    assert "running eager" in msgs[0] and "no C++ compiler" in msgs[0]
    args = _args("--compile", "--corpus", str(corpus))
    assert config_from_args(args)[0].compile is True
    assert config_from_args(_args("--corpus", str(corpus)))[0].compile is False  # off by default


def test_gpt_accepts_any_integer_token_dtype() -> None:
    m = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16))
    x = torch.randint(0, 20, (2, 8))
    ref = m(x, x)[1]
    for dt in (torch.uint8, torch.int16, torch.int32):
        assert torch.equal(m(x.to(dt), x.to(dt))[1], ref)
    with pytest.raises(ValueError, match="integer token ids"):
        m(x.float())


def _train_cli(corpus: Path, out: Path) -> Path:
    argv = ["train", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--corpus", str(corpus)]
    argv += ["--block-size", "16", "--batch-size", "4", "--steps", "4", "--eval-every", "0"]
    argv += ["--eval-batches", "1", "--no-progress", "--out", str(out), "--dropout", "0.1"]
    assert main(argv) == 0
    return out / "checkpoint.safetensors"


def test_sample_loads_a_checkpoint_and_is_seeded(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = _train_cli(corpus, tmp_path / "run")
    capsys.readouterr()
    argv = ["sample", str(ckpt), "--prompt", "def ", "--tokens", "20", "--temperature", "0.9"]
    assert main([*argv, "--top-k", "5", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("def ") and len(first.rstrip("\n")) >= 4
    assert main([*argv, "--top-k", "5", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first
    assert main(["sample", str(tmp_path / "run"), "--tokens", "3", "--samples", "2"]) == 0  # a run folder
    assert capsys.readouterr().out.count("-" * 40) == 1


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown chars", "outside the model's vocabulary: '€'"),
        ("empty prompt", "--prompt is empty"),
        ("missing", "does not exist"),
        ("corrupt", "corrupt"),
        ("bad temperature", "--temperature: must be a finite number > 0"),
    ],
)
def test_sample_bad_input_is_one_line_exit_2(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, expected: str
) -> None:
    ckpt = _train_cli(corpus, tmp_path / "run")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    argv = {
        "unknown chars": ["sample", str(ckpt), "--prompt", "x€"],
        "empty prompt": ["sample", str(ckpt), "--prompt", ""],
        "missing": ["sample", str(tmp_path / "none.safetensors")],
        "corrupt": ["sample", str(bad)],
        "bad temperature": ["sample", str(ckpt), "--temperature", "0"],
    }[case]
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and expected in err and "\n" not in err


def test_sample_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "--temperature" in out and "--top-k" in out and "CKPT" in out


def test_dropout_reaches_the_model(corpus: Path) -> None:
    t = Trainer(lm_config(corpus, dropout=0.25, steps=1))
    t.fit()
    assert t.model.config.dropout == 0.25 and math.isfinite(t.history[-1]["train_loss"])


def test_trainer_used_directly_logs_bound_statistics(corpus: Path) -> None:
    """Issue 12 item 3: ``bound/*`` reach the metrics without the CLI's extension hooks."""
    t = Trainer(lm_config(corpus, optimizer="adamw2", log_every=2, steps=4))
    result = t.fit()
    logged = [r for r in result.history if "bound/active_frac" in r]
    assert [r["step"] for r in logged] == [2, 4] and all("bound/ratio_max" in r for r in logged)
    from structlearn.train.extensions import extension_hooks
    from structlearn.train.hooks import BoundLogHook

    # The CLI passes the extension's hook itself: not doubled.
    t2 = Trainer(lm_config(corpus, optimizer="adamw2", steps=2), hooks=extension_hooks(t.config))
    t2.fit()
    assert sum(isinstance(h, BoundLogHook) for h in t2.hooks) == 1
    plain = Trainer(lm_config(corpus, steps=2))
    plain.fit()
    assert not any(isinstance(h, BoundLogHook) for h in plain.hooks)
