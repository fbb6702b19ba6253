from pathlib import Path

import numpy as np
import pytest

from structlearn.cli import main
from structlearn.data.synthetic import make_union_of_subspaces


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    X, y = make_union_of_subspaces(3, 12, 2, 40, 0.02, random_state=0)
    paths = {"X": tmp_path / "X.npy", "y": tmp_path / "y.npy", "npz": tmp_path / "d.npz"}
    np.save(paths["X"], X)
    np.save(paths["y"], y)
    np.savez(paths["npz"], X=X, y=y)
    csv = tmp_path / "d.csv"
    header = ",".join([f"f{i}" for i in range(12)] + ["label"])
    np.savetxt(csv, np.hstack([X, y[:, None]]), delimiter=",", header=header, comments="")
    paths["csv"] = csv
    return paths


def run(args: list[str]) -> int:
    return main(["cluster", *map(str, args), "--quiet"])


def test_spectral_with_labels_out_plots_and_metrics(
    data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, plots, mj = tmp_path / "lab.npy", tmp_path / "plots", tmp_path / "m.json"
    rc = run(
        [
            *(data["X"], "--method", "spectral", "--n-clusters", 3, "--labels", data["y"]),
            *("--out", out, "--plots", plots, "--metrics-out", mj, "--param", "n_neighbors=8"),
        ]
    )
    assert rc == 0
    labels = np.load(out)
    assert labels.shape == (120,) and set(np.unique(labels)) == {0, 1, 2}
    assert "ACC 1.0000" in capsys.readouterr().out
    assert (plots / "spectral_projection.png").stat().st_size > 1000
    assert (plots / "spectral_affinity.png").stat().st_size > 1000
    assert '"acc": 1.0' in mj.read_text()


def test_labels_from_npz_and_csv_column(data: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run([data["npz"], "--method", "kmeans", "--n-clusters", 3]) == 0
    assert "ACC" in capsys.readouterr().out
    assert run([data["csv"], "--method", "kmeans", "--n-clusters", 3, "--label-column", "label"]) == 0
    assert "ACC" in capsys.readouterr().out


def _bad_files(tmp_path: Path, data: dict[str, Path]) -> dict[str, tuple[list, str]]:
    X = np.load(data["X"])
    nan = X.copy()
    nan[3, 2] = np.nan
    inf = X.copy()
    inf[0, 0] = np.inf
    files = {
        "nan.npy": nan,
        "inf.npy": inf,
        "one_d.npy": X[:, 0],
        "empty.npy": np.zeros((0, 5), dtype=np.float32),
        "const.npy": np.ones((50, 4), dtype=np.float32),
        "short_y.npy": np.zeros(7, dtype=np.int64),
    }
    for name, arr in files.items():
        np.save(tmp_path / name, arr)
    (tmp_path / "garbage.npy").write_bytes(b"not a numpy file")
    (tmp_path / "text.csv").write_text("a,b\n1,x\n")
    f = str
    return {
        "nan": ([f(tmp_path / "nan.npy"), "--n-clusters", "3"], "NaN or infinite"),
        "inf": ([f(tmp_path / "inf.npy"), "--n-clusters", "3"], "NaN or infinite"),
        "one_d": ([f(tmp_path / "one_d.npy"), "--n-clusters", "3"], "2-D"),
        "empty": ([f(tmp_path / "empty.npy"), "--n-clusters", "3"], "empty"),
        "const": ([f(tmp_path / "const.npy"), "--n-clusters", "3"], "constant"),
        "few": ([f(data["X"]), "--n-clusters", "500"], "fewer than"),
        "labels_len": (
            [f(data["X"]), "--n-clusters", "3", "--labels", f(tmp_path / "short_y.npy")],
            "length",
        ),
        "method": ([f(data["X"]), "--n-clusters", "3", "--method", "nope"], "unknown method"),
        "param": ([f(data["X"]), "--n-clusters", "3", "--param", "bogus=1"], "unknown parameter"),
        "param_value": (
            [f(data["X"]), "--n-clusters", "3", "--method", "spectral", "--param", "n_init=0"],
            "n_init",
        ),
        "missing": ([f(tmp_path / "absent.npy"), "--n-clusters", "3"], "not found"),
        "garbage": ([f(tmp_path / "garbage.npy"), "--n-clusters", "3"], "not a readable"),
        "text": ([f(tmp_path / "text.csv"), "--n-clusters", "3"], "line 2, column 2: 'x' is not a number"),
        "suffix": (
            [f(data["X"]), "--n-clusters", "3", "--out", f(tmp_path / "labels.txt")],
            "--out must end",
        ),
        "zero_k": ([f(data["X"]), "--n-clusters", "0"], "n_clusters"),
    }


CASES = [
    "nan",
    "inf",
    "one_d",
    "empty",
    "const",
    "few",
    "labels_len",
    "method",
    "param",
    "param_value",
    "missing",
    "garbage",
    "text",
    "suffix",
    "zero_k",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_one_line_no_output(
    case: str, data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, match = _bad_files(tmp_path, data)[case]
    out, plots = tmp_path / "out" / "labels.npy", tmp_path / "plots"
    extra = [] if "--out" in args else ["--out", str(out)]
    capsys.readouterr()
    rc = run([*args, *extra, "--plots", str(plots)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and match in err, err
    assert not out.exists() and not plots.exists()
    assert not (tmp_path / "labels.txt").exists()


def test_bad_flag_type_is_argparse_exit_2(data: dict[str, Path]) -> None:
    with pytest.raises(SystemExit) as info:
        run([data["X"], "--n-clusters", "three"])
    assert info.value.code == 2


def test_senet_with_tuple_param_and_progress(
    data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.npy"
    args = ["cluster", str(data["npz"]), "--method", "senet", "--n-clusters", "3", "--out", str(out)]
    args += ["--param", "n_iter=30", "--param", "hidden_dims=(8,)", "--param", "out_dim=8"]
    assert main(args) == 0  # not --quiet: progress bars on stderr
    captured = capsys.readouterr()
    assert "senet: 120 samples" in captured.out and "SENet train" in captured.err
    assert np.load(out).shape == (120,)


def test_out_may_not_overwrite_an_input(data: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    before = {k: data[k].read_bytes() for k in ("X", "y")}
    for target, flag in ((data["X"], "--out"), (data["y"], "--out")):
        assert run([data["X"], "--n-clusters", 3, "--labels", data["y"], flag, target]) == 2
        assert "is an input file" in capsys.readouterr().err
    assert all(data[k].read_bytes() == before[k] for k in before)


def test_pandas_csv_exports_cluster_like_the_array(
    data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DataFrame.to_csv() (index column, numeric header) once clustered row numbers / lost a row."""
    X = np.load(data["X"])
    cols = ",".join(str(j) for j in range(X.shape[1]))
    body = [",".join(f"{v:.6f}" for v in row) for row in X]
    with_index = tmp_path / "idx.csv"
    with_index.write_text("," + cols + "\n" + "\n".join(f"{i},{r}" for i, r in enumerate(body)) + "\n")
    no_index = tmp_path / "noidx.csv"
    no_index.write_text(cols + "\n" + "\n".join(body) + "\n")
    expected = tmp_path / "from_npy.npy"
    assert run([data["X"], "--method", "spectral", "--n-clusters", 3, "--out", expected]) == 0
    capsys.readouterr()
    for path in (with_index, no_index):
        out = tmp_path / f"{path.stem}.npy"
        assert (
            run([path, "--method", "spectral", "--n-clusters", 3, "--labels", data["y"], "--out", out]) == 0
        )
        captured = capsys.readouterr()
        assert "warning" in captured.err
        assert np.array_equal(np.load(out), np.load(expected))


def test_metrics_json_records_tuple_params(data: dict[str, Path], tmp_path: Path) -> None:
    mj = tmp_path / "m.json"
    args = [data["X"], "--method", "senet", "--n-clusters", 3, "--metrics-out", mj]
    assert run([*args, "--param", "n_iter=5", "--param", "hidden_dims=(8,)", "--param", "out_dim=8"]) == 0
    import json

    assert json.loads(mj.read_text())["params"] == {"n_iter": 5, "hidden_dims": [8], "out_dim": 8}


@pytest.mark.parametrize("device", ["meta", "tpu", "cuda:99"])
def test_unusable_device_is_one_line_exit_2(
    device: str, data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """--param device=cuda on a CPU-only build once ended in an AssertionError traceback."""
    assert run([data["X"], "--method", "neuncut", "--n-clusters", 3, "--param", f"device={device}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "device" in err and "Traceback" not in err
