import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from structlearn.diagnostics import STAT_KEYS, gradient_histogram, gradient_stats


def _params_with_grads(grads, weights=None):
    out = []
    for i, g in enumerate(grads):
        w = weights[i] if weights is not None else torch.ones_like(g)
        p = nn.Parameter(w.clone())
        p.grad = g.clone()
        out.append(p)
    return out


def test_known_values_on_hand_made_gradients():
    # 1000 entries: 990 of magnitude 1 and 10 of magnitude 10, split over two matrices.
    g = torch.ones(1000)
    g[::2] = -1.0
    g[:10] = 10.0
    a, b = g[:400].reshape(20, 20), g[400:].reshape(20, 30)
    params = _params_with_grads([a, b], [torch.full((20, 20), 2.0), torch.full((20, 30), 1.0)])
    bias = nn.Parameter(torch.zeros(5))
    bias.grad = torch.full((5,), 1e6)  # 1-D: excluded from the pooled statistics
    s = gradient_stats([*params, bias])
    assert list(s) == list(STAT_KEYS)
    gn = g.double().numpy()
    assert s["q999_over_q50"] == pytest.approx(np.quantile(np.abs(gn), 0.999) / 1.0)
    assert s["top1_energy_share"] == pytest.approx(10 * 100 / (10 * 100 + 990))
    assert s["excess_kurtosis"] == pytest.approx(stats.kurtosis(gn, fisher=True, bias=True), rel=1e-5)
    na, nb = a.norm().item(), b.norm().item()
    assert s["grad_norm_max_over_median"] == pytest.approx(max(na, nb) / ((na + nb) / 2), rel=1e-6)
    ra, rb = na / 40.0, nb / np.sqrt(600.0)
    assert s["rel_grad_norm_max_over_median"] == pytest.approx(max(ra, rb) / ((ra + rb) / 2), rel=1e-6)
    assert s["grad_norm"] == pytest.approx(np.linalg.norm(gn), rel=1e-6)


def test_gaussian_gradients_have_zero_excess_kurtosis_and_known_quantile_ratio():
    torch.manual_seed(0)
    params = _params_with_grads([torch.randn(400, 500)])
    s = gradient_stats(params)
    assert abs(s["excess_kurtosis"]) < 0.05
    # |N(0,1)|: q99.9 = 3.2905, median = 0.6745
    assert s["q999_over_q50"] == pytest.approx(3.2905 / 0.6745, rel=0.03)
    assert s["grad_norm_max_over_median"] == 1.0


def test_subsampled_quantiles_are_deterministic_and_close():
    torch.manual_seed(1)
    params = _params_with_grads([torch.randn(300, 300)])
    full = gradient_stats(params)
    a = gradient_stats(params, max_samples=20_000, seed=5)
    b = gradient_stats(params, max_samples=20_000, seed=5)
    assert a == b
    assert a["q999_over_q50"] == pytest.approx(full["q999_over_q50"], rel=0.1)
    assert a["top1_energy_share"] == full["top1_energy_share"]  # exact, not sampled


def test_heavy_tail_scores_higher_than_gaussian():
    torch.manual_seed(2)
    gauss = gradient_stats(_params_with_grads([torch.randn(200, 200)]))
    cauchy = torch.distributions.StudentT(2.0).sample((200, 200))
    heavy = gradient_stats(_params_with_grads([cauchy]))
    for key in ("q999_over_q50", "top1_energy_share", "excess_kurtosis"):
        assert heavy[key] > gauss[key]


def test_on_a_model_after_backward_and_errors():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="call backward"):
        gradient_stats(model)
    model(torch.randn(16, 4)).square().sum().backward()
    s = gradient_stats(model)
    assert all(np.isfinite(v) for v in s.values())
    with pytest.raises(ValueError, match="max_samples"):
        gradient_stats(model, max_samples=2**25)


def test_mostly_zero_gradients_give_an_infinite_ratio_not_nan():
    g = torch.zeros(10, 10)
    g[0, :3] = 1.0
    assert gradient_stats(_params_with_grads([g]))["q999_over_q50"] == float("inf")


def test_histogram_counts_and_ranges():
    g = torch.tensor([[0.0, 1e-15, 1e-3, 2e-3], [1e-1, 5.0, 1e3, -1e-3]])
    h = gradient_histogram(_params_with_grads([g]), bins=14, log10_range=(-12.0, 2.0))
    assert len(h["edges"]) == 15 and len(h["counts"]) == 14
    assert h["edges"][0] == pytest.approx(1e-12) and h["edges"][-1] == pytest.approx(1e2)
    assert (h["n"], h["n_zero"], h["n_below"], h["n_above"]) == (8, 1, 1, 1)
    assert sum(h["counts"]) == 5
    assert h["counts"][9] == 3  # [1e-3, 1e-2): 1e-3, 2e-3, |-1e-3|
    with pytest.raises(ValueError, match="increasing"):
        gradient_histogram(_params_with_grads([g]), log10_range=(1.0, -1.0))
