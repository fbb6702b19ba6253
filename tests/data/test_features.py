from pathlib import Path

import numpy as np
import pytest

from structlearn.data.features import UncenteredPCA, image_feature_pipeline, load_features, load_labels


def test_npy_npz_csv_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3)).astype(np.float32)
    y = np.array([0, 1, 0, 2, 1, 2])
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    np.savez(tmp_path / "nolab.npz", X=X)
    np.savetxt(tmp_path / "h.csv", np.hstack([y[:, None], X]), delimiter=",", header="lab,a,b,c", comments="")
    np.savetxt(tmp_path / "plain.csv", X, delimiter=",")
    a, ya = load_features(tmp_path / "x.npy")
    assert ya is None and a.dtype == np.float32
    np.testing.assert_array_equal(a, X)
    b, yb = load_features(tmp_path / "d.npz")
    np.testing.assert_array_equal(b, X)
    np.testing.assert_array_equal(yb, y)
    assert load_features(tmp_path / "nolab.npz")[1] is None
    for col in ("lab", 0):
        c, yc = load_features(tmp_path / "h.csv", label_column=col)
        np.testing.assert_allclose(c, X, rtol=1e-6)
        np.testing.assert_array_equal(yc, y)
    d, yd = load_features(tmp_path / "plain.csv")
    assert yd is None and d.shape == (6, 3)


def test_load_labels(tmp_path: Path) -> None:
    y = np.array([3, 1, 2])
    np.save(tmp_path / "y.npy", y)
    np.savetxt(tmp_path / "y.csv", y[:, None], fmt="%d")
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 2)), y=y)
    for name in ("y.npy", "y.csv", "d.npz"):
        np.testing.assert_array_equal(load_labels(tmp_path / name), y)
    np.save(tmp_path / "frac.npy", np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="integer class ids"):
        load_labels(tmp_path / "frac.npy")
    np.save(tmp_path / "two.npy", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="1-D"):
        load_labels(tmp_path / "two.npy")


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "match"),
    [
        ("a.npy", b"garbage", {}, "not a readable .npy"),
        ("a.npz", b"garbage", {}, "not a readable .npz"),
        ("a.csv", "1,2\n3,x\n", {}, r"line 2, column 2: .x. is not a number"),
        ("a.csv", "", {}, "empty"),
        ("a.csv", "a,b\n1,2\n", {"label_column": "c"}, "no column named"),
        ("a.csv", "1,2\n3,4\n", {"label_column": 5}, "out of range"),
        ("a.json", "{}", {}, "unsupported"),
        ("a.npy", None, {"label_column": 0}, "csv files only"),
    ],
)
def test_bad_files_one_line(tmp_path: Path, name: str, content, kwargs: dict, match: str) -> None:
    p = tmp_path / name
    if content is None:
        np.save(p, np.zeros((2, 2)))
    elif isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        load_features(p, **kwargs)
    assert "\n" not in str(info.value)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_features(tmp_path / "none.npy")
    with pytest.raises(ValueError, match="directory"):
        load_features(tmp_path)
    np.savez(tmp_path / "bad.npz", Z=np.zeros(3))
    with pytest.raises(ValueError, match="no array named 'X'"):
        load_features(tmp_path / "bad.npz")
    np.save(tmp_path / "obj.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="numeric"):
        load_features(tmp_path / "obj.npy")


def test_pipeline_fit_on_train_apply_to_test() -> None:
    rng = np.random.default_rng(0)
    Xtr = rng.random((200, 30)).astype(np.float32)
    Xte = rng.random((50, 30)).astype(np.float32)
    for center in (True, False):
        pipe = image_feature_pipeline(10, whiten=True, center=center).fit(Xtr)
        Ztr, Zte = pipe.transform(Xtr), pipe.transform(Xte)
        assert Ztr.shape == (200, 10) and Zte.shape == (50, 10)
        np.testing.assert_allclose(np.linalg.norm(Zte, axis=1), 1.0, rtol=1e-5)
    # Whitening gives unit mean-square components on the fit set (before row normalisation).
    Z = UncenteredPCA(5, whiten=True).fit(Xtr).transform(Xtr)
    np.testing.assert_allclose((Z.astype(np.float64) ** 2).sum(0) / 199, 1.0, rtol=1e-4)
    # The uncentred projection uses the top eigenvectors of XᵀX: X's leading direction is kept.
    top = np.linalg.svd(Xtr.astype(np.float64), full_matrices=False)[2][0]
    comp = UncenteredPCA(3).fit(Xtr).components_[0]
    assert abs(comp @ top) == pytest.approx(1.0, abs=1e-6)
    only_norm = image_feature_pipeline(None, center=False).fit(Xtr)
    np.testing.assert_allclose(only_norm.transform(Xte[:1]), Xte[:1] / np.linalg.norm(Xte[0]), rtol=1e-5)
    centred = image_feature_pipeline(None).fit(Xtr)
    expect = Xte[0] - Xtr.mean(0)
    np.testing.assert_allclose(centred.transform(Xte[:1])[0], expect / np.linalg.norm(expect), rtol=1e-4)
    with pytest.raises(ValueError, match="empty"):
        image_feature_pipeline(None, center=False, normalize=False)


def test_cli_prints_a_library_warning_as_one_line(tmp_path: Path, capsys) -> None:
    from structlearn.cli import main

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = rng.integers(0, 2, 40)
    g = tmp_path / "g.csv"
    np.savetxt(g, np.hstack([X, y[:, None]]), delimiter=",", header="a,b,c,grp", comments="")
    assert main(["cluster", str(g), "--method", "kmeans", "--n-clusters", "2", "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("structlearn cluster: warning:")


def _blobs(n: int = 6) -> np.ndarray:
    return np.round(np.random.default_rng(0).normal(size=(n, 3)), 4)


def test_pandas_index_column_is_dropped_with_a_warning(tmp_path: Path) -> None:
    """DataFrame(X).to_csv() writes ',0,1,2' and row numbers as column 1: not a feature."""
    X = _blobs()
    for first in ("", "Unnamed: 0", "index"):
        names = ["0", "1", "2"] if first == "" else ["a", "b", "c"]
        rows = [",".join([first, *names])] + [",".join([str(i), *map(str, r)]) for i, r in enumerate(X)]
        p = tmp_path / "df.csv"
        p.write_text("\n".join(rows) + "\n")
        with pytest.warns(UserWarning, match="dropped column 1.*row index"):
            got, y = load_features(p)
        np.testing.assert_allclose(got, X, rtol=1e-6)
        assert y is None


def test_default_numeric_column_names_are_a_header(tmp_path: Path) -> None:
    """DataFrame(X).to_csv(index=False) writes '0,1,2' first: column names, not a data row."""
    X = _blobs()
    p = tmp_path / "noindex.csv"
    p.write_text("0,1,2\n" + "\n".join(",".join(map(str, r)) for r in X) + "\n")
    with pytest.warns(UserWarning, match="read as column names"):
        got, _ = load_features(p)
    np.testing.assert_allclose(got, X, rtol=1e-6)


@pytest.mark.parametrize("delimiter", [";", "\t", " ", "  "])
def test_other_delimiters(tmp_path: Path, delimiter: str) -> None:
    X = _blobs()
    p = tmp_path / "x.txt"
    np.savetxt(p, X, delimiter=delimiter, fmt="%.4f")
    np.testing.assert_allclose(load_features(p)[0], X, rtol=1e-6)


def test_blank_leading_lines_are_skipped(tmp_path: Path) -> None:
    X = _blobs()
    p = tmp_path / "x.csv"
    p.write_text("\n\na,b,c\n" + "\n".join(",".join(map(str, r)) for r in X) + "\n")
    np.testing.assert_allclose(load_features(p)[0], X, rtol=1e-6)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("NA,1.5,2\n1,2,3\n", r"row 1 has a missing value in column 1 \('NA'\)"),
        ("1.5,,2\n1,2,3\n", r"row 1 has a missing value in column 2"),
        ("a,b,c\n", "has a header row but no data rows"),
        ("a,b\n1,2\n3,cat\n", r"line 3, column 2: 'cat' is not a number$"),
    ],
)
def test_gaps_and_empty_bodies_are_one_line_errors(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(ValueError, match=match):
        load_features(p)


def test_label_names_become_class_ids(tmp_path: Path) -> None:
    X = _blobs()
    names = ["dog", "cat", "dog", "emu", "cat", "cat"]
    p = tmp_path / "named.csv"
    p.write_text(
        "a,b,c,kind\n" + "\n".join(",".join([*map(str, r), k]) for r, k in zip(X, names, strict=True)) + "\n"
    )
    got, y = load_features(p, label_column="kind")
    np.testing.assert_allclose(got, X, rtol=1e-6)
    np.testing.assert_array_equal(y, [1, 0, 1, 2, 0, 0])  # sorted names: cat, dog, emu
    with pytest.raises(
        ValueError, match=r"column 4: 'dog' is not a number; if it holds labels, pass label_column=3"
    ):
        load_features(p)
    lab = tmp_path / "labels.csv"
    lab.write_text("\n".join(names) + "\n")
    np.testing.assert_array_equal(load_labels(lab), [1, 0, 1, 2, 0, 0])


def test_a_feature_named_index_is_kept(tmp_path: Path) -> None:
    """Only row numbers are dropped: a column headed "index" that holds measurements stays."""
    X = _blobs()
    p = tmp_path / "named.csv"
    p.write_text("index,b,c\n" + "\n".join(",".join(map(str, r)) for r in X) + "\n")
    np.testing.assert_allclose(load_features(p)[0], X, rtol=1e-6)
