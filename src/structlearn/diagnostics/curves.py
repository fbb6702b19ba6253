"""Training curves as PNG: one run's loss/accuracy panels, and several runs overlaid for comparison.

Input is the list of metrics records a run logs (``train/metrics_log.py``): dicts with ``step`` and any
of ``train_loss``, ``val_loss``, ``test_loss``, ``test_acc``. Missing or ``None`` values are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from structlearn.utils.plotting import save_figure, subplots

LOSS_KEYS = ("train_loss", "val_loss", "test_loss")


def series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of ``key`` over the records that have a finite value for it."""
    steps, values = [], []
    for r in records:
        v = r.get(key)
        if isinstance(v, int | float) and v == v and abs(v) != float("inf"):
            steps.append(int(r["step"]))
            values.append(float(v))
    return steps, values


def plot_run(records: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: str = "") -> Path:
    """Loss curves (train and evaluation) and, when present, test accuracy."""
    has_acc = bool(series(records, "test_acc")[0])
    fig, axes = subplots(1, 2 if has_acc else 1, figsize=(11 if has_acc else 6, 4), squeeze=False)
    ax = axes[0][0]
    for key in LOSS_KEYS:
        s, v = series(records, key)
        if s:
            ax.plot(s, v, label=key, marker="o" if key != "train_loss" and len(s) < 30 else None, ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if has_acc:
        s, v = series(records, "test_acc")
        axes[0][1].plot(s, v, marker="o", ms=3, color="tab:green")
        axes[0][1].set_xlabel("step")
        axes[0][1].set_ylabel("test accuracy")
        axes[0][1].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_runs(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | os.PathLike[str],
    keys: Sequence[str] = ("train_loss", "val_loss"),
    title: str = "",
) -> Path:
    """One panel per metric in ``keys``, one line per run (same colour across panels)."""
    return plot_panels([(key, runs, key) for key in keys], path, ncols=len(keys), title=title)


Panel = tuple[str, Mapping[str, Sequence[Mapping[str, Any]]], str]


def plot_panels(
    panels: Sequence[Panel], path: str | os.PathLike[str], ncols: int = 2, title: str = ""
) -> Path:
    """A grid of panels ``(panel title, {run name: records}, metric key)``, one line per run.

    Loss axes are logarithmic. Runs keep their colour across panels when they share a name.
    """
    if not panels:
        raise ValueError("nothing to plot: no panels")
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = subplots(nrows, ncols, figsize=(5.5 * ncols, 3.8 * nrows), squeeze=False)
    colours: dict[str, str] = {}
    for j, (panel_title, runs, key) in enumerate(panels):
        ax = axes[j // ncols][j % ncols]
        for name, records in runs.items():
            colour = colours.setdefault(name, f"C{len(colours) % 10}")
            s, v = series(records, key)
            if s:
                ax.plot(s, v, label=name, color=colour, marker="o" if len(s) < 15 else None, ms=3)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        if key.endswith("loss"):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    for j in range(len(panels), nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
