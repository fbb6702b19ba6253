import math

import pytest
import torch

from structlearn.models import GPT, GPTConfig

SMALL = dict(vocab_size=40, block_size=12, n_layer=2, n_head=2, n_embd=16)


@pytest.mark.parametrize("norm", ["preln", "postln", "dnt", "dnt-full", "s3"])
def test_shapes_loss_and_backward(norm):
    model = GPT(GPTConfig(**SMALL, norm=norm))
    idx = torch.randint(40, (3, 12))
    logits, loss = model(idx)
    assert logits.shape == (3, 12, 40) and loss is None
    logits, loss = model(idx, idx)
    assert loss.ndim == 0 and abs(loss.item() - math.log(40)) < 0.5  # near-uniform at init
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_default_config_is_the_paper_dnt():
    c = GPTConfig()
    assert c.norm == "dnt" and c.norm_type == "rms" and c.dropout == 0.0


def test_causality_future_tokens_leave_past_logits_unchanged():
    model = GPT(GPTConfig(**SMALL, norm="dnt"))
    idx = torch.randint(40, (2, 12))
    idx2 = idx.clone()
    idx2[:, 8:] = (idx2[:, 8:] + 1) % 40
    a, b = model(idx)[0], model(idx2)[0]
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_tied_head_init_and_param_count():
    model = GPT(GPTConfig(**SMALL, norm="preln"))
    assert model.lm_head.weight is model.wte.weight
    expected = (
        40 * 16  # tied token embedding / head
        + 12 * 16  # positions
        + 2 * (4 * 16 * 16 + 2 * 4 * 16 * 16 + 2 * 16)  # attention, FFN, two norm gains per block
        + 16  # final norm
    )
    assert model.num_params() == expected
    assert model.num_params(non_embedding=True) == expected - 12 * 16
    torch.manual_seed(0)
    big = GPT(GPTConfig(vocab_size=64, block_size=8, n_layer=8, n_head=4, n_embd=128, norm="dnt"))
    assert abs(big.blocks[0].attn.wq.weight.std().item() - 0.02) < 0.002
    resid = 0.02 / math.sqrt(2 * 8)
    assert abs(big.blocks[0].attn.wo.weight.std().item() - resid) < 0.1 * resid
    assert abs(big.blocks[3].ffn.w2.weight.std().item() - resid) < 0.1 * resid
    assert torch.equal(big.transformer.input_norm.weight, torch.ones(128))


def test_ignore_index_and_bad_inputs():
    model = GPT(GPTConfig(**SMALL))
    idx = torch.randint(40, (2, 6))
    targets = idx.clone()
    targets[:, :3] = -1
    _, loss = model(idx, targets)
    logits = model(idx)[0]
    ref = torch.nn.functional.cross_entropy(logits[:, 3:].reshape(-1, 40), idx[:, 3:].reshape(-1))
    torch.testing.assert_close(loss, ref)
    with pytest.raises(ValueError, match="sequence length 13"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match="2-D"):
        model(torch.zeros(13, dtype=torch.long))
    with pytest.raises(ValueError, match="targets shape"):
        model(idx, idx[:, :3])


def test_generate_is_reproducible_and_crops_context():
    model = GPT(GPTConfig(**SMALL))
    start = torch.zeros(2, 10, dtype=torch.long)
    a = model.generate(start, 8, top_k=5, generator=torch.Generator().manual_seed(3))
    b = model.generate(start, 8, top_k=5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (2, 18) and torch.equal(a, b) and torch.equal(a[:, :10], start)


def test_bf16_autocast_forward_backward():
    model = GPT(GPTConfig(**SMALL, norm="dnt"))
    idx = torch.randint(40, (2, 12))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, loss = model(idx, idx)
    loss.backward()
    assert torch.isfinite(loss)


def test_config_round_trip():
    c = GPTConfig(**SMALL, norm="dnt-full", norm_type="layer")
    assert GPTConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown GPTConfig fields: bias"):
        GPTConfig.from_dict({**c.to_dict(), "bias": True})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_embd=30, n_head=4), "divisible"),
        (dict(norm="pre"), "unknown norm scheme 'pre'"),
        (dict(norm_type="batch"), "unknown norm_type 'batch'"),
        (dict(n_layer=0), "n_layer must be >= 1"),
        (dict(vocab_size=-3), "vocab_size"),
        (dict(block_size=0), "block_size"),
        (dict(n_head=0), "n_head"),
        (dict(n_embd=2.5), "n_embd must be an integer"),
        (dict(dropout=1.0), "dropout"),
        (dict(activation="swish"), "activation"),
    ],
)
def test_bad_configs_raise_one_line_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as exc:
        GPTConfig(**{**SMALL, **kwargs})
    assert "\n" not in str(exc.value)


def test_model_requires_a_config():
    with pytest.raises(ValueError, match="GPTConfig"):
        GPT({"vocab_size": 3})


def _greedy(model: GPT, idx: torch.Tensor, n: int) -> torch.Tensor:
    for _ in range(n):
        nxt = model(idx[:, -model.config.block_size :])[0][:, -1].argmax(-1, keepdim=True)
        idx = torch.cat([idx, nxt], 1)
    return idx


@pytest.mark.parametrize("temperature", [1e-40, 1e-300, 5e-324])
def test_generate_with_a_tiny_temperature_is_greedy(temperature: float) -> None:
    model = GPT(GPTConfig(**SMALL))
    start = torch.randint(40, (2, 3))
    out = model.generate(start, 6, temperature=temperature, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, _greedy(model, start, 6))


def test_generate_never_samples_suppressed_ids() -> None:
    model = GPT(GPTConfig(**SMALL))
    start = torch.zeros(4, 1, dtype=torch.long)
    free = model.generate(start, 30, temperature=1e3, generator=torch.Generator().manual_seed(0))
    assert (free[:, 1:] < 2).any()  # near-uniform over 40 ids: 0 and 1 do come up
    out = model.generate(start, 30, temperature=1e3, suppress_ids=[0, 1], top_k=3)
    assert (out[:, 1:] >= 2).all()
    with pytest.raises(ValueError, match="suppress_ids must be <= 39"):
        model.generate(start, 1, suppress_ids=[40])
    with pytest.raises(ValueError, match="nothing is left to sample"):
        model.generate(start, 1, suppress_ids=range(40))


@pytest.mark.parametrize(
    ("idx", "match"),
    [
        (torch.tensor([1, 2, 3]), r"idx must be 2-D, got shape \(3,\)"),
        ([[1, 2]], "idx must be a torch.Tensor of token ids, got list"),
        (torch.tensor([[0.5]]), "idx must hold integer token ids"),
    ],
)
def test_generate_rejects_bad_prompts_in_one_line(idx, match):
    model = GPT(GPTConfig(**SMALL))
    with pytest.raises(ValueError, match=match):
        model.generate(idx, 2)
