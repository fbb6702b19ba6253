from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from structlearn.diagnostics.stability import StabilityHook, plot_stability, stability_metrics, warmup_curve
from structlearn.optim import AdamW2
from tests.diagnostics.test_attention import TwoLayer


def test_metrics_keys_and_values() -> None:
    model = TwoLayer()
    x = torch.randn(2, 5, 12)
    out = stability_metrics(model, x)
    assert out["attn/entropy_min"] <= out["attn/entropy_mean"]
    assert 0 < out["qk/sec1_max"] <= out["qk/sec3_max"] <= 1 + 1e-6
    assert {"attn/entropy/l1h2", "qk/sec3/l0h0", "qk/erank/l1h0", "sigma1/layers.0.wq.weight"} <= set(out)
    assert out["sigma1_max"] == max(v for k, v in out.items() if k.startswith("sigma1/"))
    assert all(isinstance(v, float) for v in out.values())
    short = stability_metrics(model, x, per_head=False, sigma_of_weights=False)
    assert "attn/entropy/l0h0" not in short and "sigma1_max" not in short


def test_hook_logs_every_n_steps_and_plots(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TwoLayer()
    opt = AdamW2(model.named_parameters(), lr=1e-2, tau=0.01, bound_params="attention")
    x = torch.randn(4, 5, 12)
    hook = StabilityHook(x[:2], every=3, bound_every=1)
    trainer = SimpleNamespace(model=model, optimizer=opt)
    logged = []
    for step in range(7):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
        logged.append(hook.after_step(trainer, step))
    assert all("bound/scale_mean" in r for r in logged)
    assert [("attn/entropy_min" in r) for r in logged] == [True, False, False, True, False, False, True]
    # σ₁ is logged for exactly the bounded matrices.
    assert sum(k.startswith("sigma1/") for k in logged[0]) == 8
    for r, s in zip(hook.records, range(7), strict=True):
        r["loss"] = 1.0 / (s + 1)
    png = plot_stability(hook.records, tmp_path / "s.png", warmup_steps=5, title="t")
    assert png.stat().st_size > 1000


def test_warmup_curve_and_bad_input() -> None:
    assert warmup_curve([0, 4, 9, 20], 10).tolist() == [0.1, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="every must be >= 1"):
        StabilityHook(torch.zeros(1), every=0)
    with pytest.raises(ValueError, match="probe must be"):
        StabilityHook(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no attention module"):
        stability_metrics(nn.Linear(2, 2), torch.zeros(1, 2))


@pytest.mark.parametrize("norm", ["preln", "dnt"])
def test_metrics_on_the_library_gpt_and_vit(norm: str) -> None:
    from structlearn.models import GPT, GPTConfig, ViT, ViTConfig

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, norm=norm))
    idx = torch.randint(0, 11, (3, 8))
    out = stability_metrics(gpt, idx)
    assert {"attn/entropy/l1h1", "qk/sec1/l0h0", "sigma1/transformer.blocks.0.attn.wq.weight"} <= set(out)
    # Causal row 0 has entropy 0, the others at most log(t + 1).
    assert 0 < out["attn/entropy_min"] < sum(torch.log(torch.arange(1.0, 9.0))).item() / 8 + 1e-6
    vit = ViT(ViTConfig(image_size=8, patch_size=4, n_layer=1, n_head=2, n_embd=16, norm=norm))
    out = stability_metrics(vit, torch.rand(2, 8, 8))
    assert out["attn/entropy_mean"] <= torch.log(torch.tensor(5.0)).item() + 1e-6  # 4 patches + CLS
