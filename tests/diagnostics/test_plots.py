import pytest
import torch
from torch import nn

from structlearn.diagnostics import gradient_histogram
from structlearn.diagnostics.plots import histogram_median, plot_gradient_histograms


def _hist(scale, df=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(100, 100, generator=gen) * scale
    if df is not None:
        g = torch.distributions.StudentT(df).sample((100, 100)) * scale
    p = nn.Parameter(torch.ones(100, 100))
    p.grad = g
    return gradient_histogram([p], bins=70)


def test_histogram_median_is_close_to_the_true_median():
    h = _hist(1e-4)
    assert histogram_median(h) == pytest.approx(0.6745e-4, rel=0.1)


@pytest.mark.parametrize("kind", ["ccdf", "density"])
def test_plot_writes_a_png(tmp_path, kind):
    path = plot_gradient_histograms(
        {"preln": _hist(1e-3, df=2.0), "dnt": _hist(1e-5)}, tmp_path / "g.png", kind=kind, normalize=True
    )
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no gradient histograms"):
        plot_gradient_histograms({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="not a gradient histogram"):
        plot_gradient_histograms({"a": {"edges": [1, 2]}}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="unknown kind"):
        plot_gradient_histograms({"a": _hist(1.0)}, tmp_path / "x.png", kind="pdf")
    assert not (tmp_path / "x.png").exists()
