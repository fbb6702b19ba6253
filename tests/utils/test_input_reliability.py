"""Regression tests for issue 11 (items 4, 5, 7, 8, 10) and issue 10 (item 6): bad inputs give one-line
ValueErrors (exit 2 in the CLI) or correct answers, never tracebacks from deep inside or silent errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from structlearn.models.gpt import GPT, GPTConfig
from structlearn.optim.spectral_bound import AdamW2


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- 11.8 GPT token ids, AdamW2 betas
@pytest.fixture(scope="module")
def gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_gpt_accepts_any_integer_dtype(gpt: GPT, dtype: torch.dtype) -> None:
    idx = torch.tensor([[1, 2, 3, 15]], dtype=dtype)
    ref, _ = gpt(idx.long())
    logits, loss = gpt(idx, targets=idx)
    assert torch.equal(logits, ref) and torch.isfinite(loss)


def test_gpt_token_out_of_vocab(gpt: GPT) -> None:
    with pytest.raises(ValueError, match="outside") as exc:
        gpt(torch.tensor([[1, 16]]))
    assert "16" in _one_line(exc)
    with pytest.raises(ValueError, match="outside"):
        gpt(torch.tensor([[1, -2]]))
    with pytest.raises(ValueError, match="targets"):
        gpt(torch.tensor([[1, 2]]), targets=torch.tensor([[1, 99]]))
    gpt(torch.tensor([[1, 2]]), targets=torch.tensor([[1, -1]]))  # -1 = ignored target, allowed


@pytest.mark.parametrize("bad", [torch.tensor([[1.0, 2.0]]), torch.tensor([[True, False]])])
def test_gpt_non_integer_tokens(gpt: GPT, bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="integer token ids"):
        gpt(bad)


@pytest.mark.parametrize(
    "betas", [(0.9,), (0.9, 0.99, 0.999), (1.0, 0.999), (0.9, -0.1), (0.9, float("nan")), "ab", 0.9]
)
def test_adamw2_betas(betas: object) -> None:
    p = torch.nn.Parameter(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="betas") as exc:
        AdamW2([p], betas=betas)  # type: ignore[arg-type]
    _one_line(exc)


def test_adamw2_valid_betas() -> None:
    p = torch.nn.Parameter(torch.zeros(2, 2))
    AdamW2([p], betas=(0.0, 0.95))
