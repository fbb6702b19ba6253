"""Plots of gradient-entry distributions (the DNT paper's Figure 1 comparison, arXiv 2507.17501).

``plot_gradient_histograms({run: hist}, path)`` draws, for each run, a histogram returned by
:func:`structlearn.diagnostics.gradients.gradient_histogram` as

- ``kind="ccdf"`` (default): P(|g| > x) on log–log axes; a heavy tail is a slowly falling curve;
- ``kind="density"``: the fraction of entries per decade of |g|.

``normalize=True`` divides |g| by each run's median (read off the histogram), so runs whose gradients
differ in overall scale (e.g. DNT vs Pre-LN) are compared by *shape*, which is what the heavy-tail claim
is about.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from structlearn.utils.plotting import save_figure, subplots
from structlearn.utils.validation import check_choice


def _arrays(hist: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, int, int]:
    try:
        edges = np.asarray(hist["edges"], dtype=np.float64)
        counts = np.asarray(hist["counts"], dtype=np.float64)
        n, n_above = int(hist["n"]), int(hist.get("n_above", 0))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a gradient histogram (need edges, counts, n): {exc}") from None
    if edges.ndim != 1 or counts.shape != (edges.size - 1,) or n <= 0:
        raise ValueError("gradient histogram has inconsistent edges/counts or no entries")
    return edges, counts, n, n_above


def histogram_median(hist: Mapping[str, Any]) -> float:
    """Median of |g| interpolated (in log space) from the histogram."""
    edges, counts, n, n_above = _arrays(hist)
    below = n - n_above - counts.sum()  # zeros and entries under the range
    cdf = (below + np.concatenate([[0.0], np.cumsum(counts)])) / n
    i = int(np.searchsorted(cdf, 0.5))
    if i == 0:
        return float(edges[0])
    if i >= edges.size:
        return float(edges[-1])
    lo, hi = cdf[i - 1], cdf[i]
    t = 0.0 if hi == lo else (0.5 - lo) / (hi - lo)
    return float(10 ** (np.log10(edges[i - 1]) + t * (np.log10(edges[i]) - np.log10(edges[i - 1]))))


def plot_gradient_histograms(
    hists: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    kind: str = "ccdf",
    normalize: bool = False,
    title: str | None = None,
) -> Path:
    """One curve per run; written atomically as PNG to ``path``."""
    check_choice("kind", kind, ["ccdf", "density"])
    if not hists:
        raise ValueError("no gradient histograms to plot")
    fig, ax = subplots(figsize=(6.0, 4.2))
    for name, hist in hists.items():
        edges, counts, n, n_above = _arrays(hist)
        x_scale = histogram_median(hist) if normalize else 1.0
        x = edges / x_scale
        if kind == "ccdf":
            tail = n_above + np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])
            y = tail / n
            keep = y > 0
            ax.loglog(x[keep], y[keep], label=name)
        else:
            width = np.diff(np.log10(edges))
            centers = np.sqrt(edges[:-1] * edges[1:]) / x_scale
            y = counts / (n * width)
            keep = y > 0
            ax.loglog(centers[keep], y[keep], label=name)
    ax.set_xlabel("|g| / median |g|" if normalize else "|g|")
    ax.set_ylabel("P(|g| > x)" if kind == "ccdf" else "fraction of entries per decade")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
