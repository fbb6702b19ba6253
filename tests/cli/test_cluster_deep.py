"""`structlearn cluster --method prodsc|neuncut`: same metrics and plots as the other methods."""

from pathlib import Path

import numpy as np
import pytest

from structlearn.cli import main
from structlearn.data.synthetic import make_union_of_subspaces


@pytest.fixture
def data(tmp_path: Path) -> Path:
    X, y = make_union_of_subspaces(3, 12, 2, 40, 0.02, random_state=0)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    return path


def test_prodsc_cli_metrics_and_plots(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, plots = tmp_path / "lab.npy", tmp_path / "plots"
    params = ["hidden_dims=(32,)", "out_dim=8", "n_epochs=40", "warmup_steps=5"]
    args = [str(data), "--method", "prodsc", "--n-clusters", "3", "--out", str(out), "--plots", str(plots)]
    rc = main(["cluster", *args, *[a for p in params for a in ("--param", p)], "--quiet"])
    assert rc == 0
    assert np.load(out).shape == (120,)
    assert "prodsc: 120 samples" in capsys.readouterr().out
    assert (plots / "prodsc_projection.png").stat().st_size > 1000
    assert (plots / "prodsc_affinity.png").stat().st_size > 1000  # |YYᵀ| sorted by label


def test_neuncut_cli(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = ["hidden_dims=(32,)", "n_epochs=30", "gamma=20.0"]
    args = [str(data), "--method", "neuncut", "--n-clusters", "3"]
    assert main(["cluster", *args, *[a for p in params for a in ("--param", p)], "--quiet"]) == 0
    assert "ACC" in capsys.readouterr().out


def test_plots_of_a_subset_trained_fit(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trained on a subset (max_train_samples), the affinity covers only the training rows: the plot
    sorts those rows by their labels (it had stopped the command after the fit with "labels has length
    120 but there are 60 samples")."""
    from structlearn.cluster.plots import plot_affinity

    seen: list[tuple[int, int, int]] = []

    def spy(A, labels, path, *, true_labels=None, title=""):
        seen.append((A.shape[0], len(labels), len(true_labels)))
        return plot_affinity(A, labels, path, true_labels=true_labels, title=title)

    plots = tmp_path / "plots"
    params = ["hidden_dims=(32,)", "n_epochs=30", "max_train_samples=60"]
    args = [str(data), "--method", "neuncut", "--n-clusters", "3", "--plots", str(plots)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("structlearn.cluster.plots.plot_affinity", spy)
        rc = main(["cluster", *args, *[a for p in params for a in ("--param", p)], "--quiet"])
    assert rc == 0 and "neuncut: 120 samples" in capsys.readouterr().out
    assert seen == [(60, 60, 60)]
    assert (plots / "neuncut_affinity.png").stat().st_size > 1000


def test_bad_parameters_exit_2_without_output(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lab.npy"
    for method, param in [("prodsc", "eps_sq=0"), ("prodsc", "half_iters=0"), ("neuncut", "gamma=-1")]:
        args = [str(data), "--method", method, "--n-clusters", "3", "--out", str(out), "--param", param]
        assert main(["cluster", *args, "--quiet"]) == 2
        assert param.split("=")[0] in capsys.readouterr().err
    assert not out.exists()
