"""Regression tests for issue 11 (items 4, 5, 7, 8, 10) and issue 10 (item 6): bad inputs give one-line
ValueErrors (exit 2 in the CLI) or correct answers, never tracebacks from deep inside or silent errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from structlearn.cli import main
from structlearn.data.features import load_features, load_labels
from structlearn.data.sequences import load_feature_sequence
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


# ---------------------------------------------------------------- 11.7 / 11.10 empty, corrupt, folder files
@pytest.fixture
def bad_files(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "empty.npz").write_bytes(b"")
    rng = np.random.default_rng(0)
    (tmp_path / "rand.npy").write_bytes(rng.bytes(300))
    (tmp_path / "rand.npz").write_bytes(rng.bytes(300))
    (tmp_path / "dir.npy").mkdir()
    np.save(tmp_path / "ok.npy", rng.normal(size=(20, 3)).astype(np.float32))
    return tmp_path


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("empty.npy", "empty"),
        ("empty.npz", "empty"),
        ("rand.npy", "not a readable .npy file"),
        ("rand.npz", "not a readable .npz file"),
        ("dir.npy", "directory"),
    ],
)
def test_bad_feature_files_one_line(bad_files, name: str, match: str) -> None:  # type: ignore[no-untyped-def]
    for loader in (load_features, load_feature_sequence):
        with pytest.raises(ValueError, match=match) as exc:
            loader(bad_files / name)
        assert "pickle" not in _one_line(exc)
    if name.endswith(".npy"):
        with pytest.raises(ValueError, match=match):
            load_labels(bad_files / name)


@pytest.mark.parametrize("argv", [["{d}/empty.npy"], ["{d}/ok.npy", "--labels", "{d}/empty.npy"]])
def test_segment_empty_npy_exit_2(bad_files, capsys, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    args = ["segment", *[a.format(d=bad_files) for a in argv], "-k", "2", "--iters", "2"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "empty" in err and "\n" not in err


# ---------------------------------------------------------------- 11.5 checkpoint metadata
@pytest.mark.parametrize(
    ("step", "match"), [(-3, "negative step"), (2.5, "non-integer"), ("7", "non-integer")]
)
def test_checkpoint_bad_step(tmp_path, step: object, match: str) -> None:  # type: ignore[no-untyped-def]
    from structlearn.train.checkpoint import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "c.safetensors", {"step": step, "w": torch.ones(2)})
    with pytest.raises(ValueError, match=match) as exc:
        load_checkpoint(path)
    _one_line(exc)


def test_checkpoint_shape_mismatch_names_tensor(gpt: GPT) -> None:
    from structlearn.train.checkpoint import check_state_shapes

    other = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=32))
    with pytest.raises(ValueError, match=r"wte.weight has shape \(16, 32\) there but \(16, 16\)") as exc:
        check_state_shapes(gpt.state_dict(), other.state_dict())
    _one_line(exc)
    deeper = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="unexpected"):
        check_state_shapes(gpt.state_dict(), deeper.state_dict())
    check_state_shapes(gpt.state_dict(), gpt.state_dict())


# ---------------------------------------------------------------- 11.4 huge / tiny finite values
def _blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(c, 0.3, (20, 2)) for c in ([0, 0], [3, 0], [0, 3])])


@pytest.mark.parametrize("factor", [1e30, 1e299, 1e-300, 1e16])
def test_out_of_range_values_refused(factor: float) -> None:
    from structlearn.cluster.methods.baselines import EnSC, KMeansClustering

    for est in (KMeansClustering(3, random_state=0), EnSC(3, random_state=0)):
        with pytest.raises(ValueError, match="outside the supported range") as exc:
            est.fit(_blobs() * factor)
        assert "NaN" not in _one_line(exc) and "identical" not in str(exc.value)


@pytest.mark.parametrize("factor", [1e14, 1e-14])
def test_in_range_scaled_values_cluster_correctly(factor: float) -> None:
    from structlearn.cluster.methods.baselines import KMeansClustering
    from structlearn.cluster.metrics import evaluate

    X = _blobs()
    y = np.repeat(np.arange(3), 20)
    labels = KMeansClustering(3, random_state=0).fit(X * factor).labels_
    assert evaluate(y, labels)["acc"] == 1.0


# ---------------------------------------------------------------- 11.9 --augment-shift larger than the image
def test_augment_shift_larger_than_image() -> None:
    from structlearn.train.config import TrainConfig
    from structlearn.train.distributed import DistContext
    from structlearn.train.tasks import ImageTask

    cfg = TrainConfig(task="image", dataset="digits", batch_size=16, train_subset=100, augment_shift=40)
    with pytest.raises(ValueError, match=r"augment_shift 40 is too large for 8×8 images.*at most 4") as exc:
        ImageTask(cfg, DistContext())
    _one_line(exc)
    assert ImageTask(cfg.replace(augment_shift=4), DistContext()).shift == 4


def test_train_cli_augment_shift_exit_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    argv = ["train", "--task", "image", "--dataset", "digits", "--augment-shift", "40", "--steps", "1"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert "too large" in capsys.readouterr().err


# ---------------------------------------------------------------- 10.5 one source of defaults (segment CLI)
@pytest.mark.parametrize("method", ["tr2c", "tsc"])
def test_segment_cli_uses_estimator_defaults(bad_files, monkeypatch, method: str) -> None:  # type: ignore[no-untyped-def]
    from structlearn.cluster.methods.tr2c import TR2C
    from structlearn.cluster.methods.tsc import TSC

    cls = {"tr2c": TR2C, "tsc": TSC}[method]
    seen: dict[str, object] = {}

    def fake_fit(self, X, y=None):  # type: ignore[no-untyped-def]
        seen.update(self.get_params(deep=False))
        self.labels_ = np.arange(len(X)) % self.n_clusters
        return self

    monkeypatch.setattr(cls, "fit", fake_fit)
    assert main(["segment", str(bad_files / "ok.npy"), "-k", "2", "--method", method]) == 0
    defaults = cls(2).get_params(deep=False)
    for p in ("window", "lambda1", "lambda2", "n_iters"):
        if p in defaults:
            assert seen[p] == defaults[p], p
    assert main(["segment", str(bad_files / "ok.npy"), "-k", "2", "--method", method, "--lambda2", "3"]) == 0
    assert seen["lambda2"] == 3.0


# ---------------------------------------------------------------- 10.6 CSV label column not named
def _csv_with_labels(path, header: str | None) -> None:  # type: ignore[no-untyped-def]
    X = _blobs()
    y = np.repeat(np.arange(3), 20)
    np.savetxt(path, np.hstack([X, y[:, None]]), delimiter=",", header=header or "", comments="")


def test_csv_header_label_column_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _csv_with_labels(tmp_path / "h.csv", "a,b,label")
    with pytest.raises(ValueError, match="column named 'label'") as exc:
        load_features(tmp_path / "h.csv")
    _one_line(exc)
    X, y = load_features(tmp_path / "h.csv", label_column="label")
    assert X.shape == (60, 2) and y is not None and set(y) == {0, 1, 2}
    assert main(["cluster", str(tmp_path / "h.csv"), "--n-clusters", "3", "--quiet"]) == 2
    assert "--label-column label" in capsys.readouterr().err


def test_csv_integer_column_warns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _csv_with_labels(tmp_path / "n.csv", None)
    with pytest.warns(UserWarning, match="column 2 holds 3 distinct small integers"):
        load_features(tmp_path / "n.csv")
    np.savetxt(tmp_path / "real.csv", _blobs(), delimiter=",")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_features(tmp_path / "real.csv")


# ---------------------------------------------------------------- 11.14 README and predict
def test_readme_predict_claim_matches_estimators() -> None:
    from pathlib import Path

    from structlearn.cluster.methods.tr2c import TR2C
    from structlearn.cluster.methods.tsc import TSC

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "`fit`, `fit_predict`, `predict`, `labels_`" not in readme
    assert not hasattr(TR2C, "predict") and not hasattr(TSC, "predict")
    assert "TR2C and TSC" in readme


# ---------------------------------------------------------------- 10.7 plots with true labels
def test_plots_use_true_labels(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import scipy.sparse as sp

    from structlearn.cluster import plots

    figs: list = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (figs.append(fig), real_save(fig, path))[1])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    true = np.repeat([0, 1], 20)
    pred = rng.integers(0, 2, 40)
    plots.plot_embedding_2d(X, pred, tmp_path / "p.png", true_labels=true)
    scatters = [ax for ax in figs[-1].axes if ax.get_xlabel() == "PC 1"]
    assert len(scatters) == 2 and "true" in scatters[0].get_title()
    np.testing.assert_array_equal(scatters[0].collections[0].get_array(), true)
    np.testing.assert_array_equal(scatters[1].collections[0].get_array(), pred)
    A = sp.random(40, 40, density=0.2, random_state=0)
    plots.plot_affinity(A, pred, tmp_path / "a.png", true_labels=true)
    shown = figs[-1].axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, np.sqrt(plots.affinity_image(A, true)))
    assert "true label" in figs[-1].axes[0].get_title()
    with pytest.raises(ValueError, match="true_labels"):
        plots.plot_embedding_2d(X, pred, tmp_path / "q.png", true_labels=true[:5])


# ---------------------------------------------------------------- found by benchmarks/bad_input_sweep.py
@pytest.mark.parametrize("param", ["random_state=abc", "n_clusters=4"])
def test_cluster_param_duplicating_a_flag(bad_files, capsys, param: str) -> None:  # type: ignore[no-untyped-def]
    argv = ["cluster", str(bad_files / "ok.npy"), "--n-clusters", "3", "--quiet", "--param", param]
    assert main(argv) == 2
    assert "is not allowed" in capsys.readouterr().err
