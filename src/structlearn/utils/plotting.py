"""Matplotlib without a display, and figures saved atomically as PNG."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and servers have no display
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from structlearn.utils.io import atomic_path


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Save ``fig`` as PNG via a temporary file, then close it."""
    dest = Path(path)
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return dest


def subplots(*args, **kwargs):  # type: ignore[no-untyped-def]
    """``plt.subplots`` with the Agg backend already selected."""
    return plt.subplots(*args, **kwargs)
