"""User feature files and the documented feature pipeline for raw images.

Files (:func:`load_features`, :func:`load_labels`):

- ``.npy``: a 2-D numeric array (no pickled objects);
- ``.npz``: key ``X`` (features) and optional key ``y`` (labels);
- ``.csv`` / ``.txt``: numbers separated by commas, semicolons, tabs or whitespace; an optional header
  row (detected when the first row is not numeric, or is exactly 0, 1, …, D−1 as pandas writes default
  column names; a first row of numbers with a gap is refused, not taken for a header); pandas' row index
  (an unnamed first column, or one named ``index`` / ``Unnamed: 0`` holding row numbers) is dropped
  with a warning; an optional label column (``label_column``: index or header name; numbers or names,
  names becoming ids in sorted order). Without ``label_column``, a header cell named like a label
  (``label``, ``y``, ``class``, ...) is refused and a column of small integers among real-valued ones
  draws a warning (issue 10.6).

Every problem (missing file, unreadable or non-numeric content, wrong shape) is a one-line ValueError /
FileNotFoundError. Content checks (NaN, constant columns, too few samples) are done by the estimators.

Image pipeline (:func:`image_feature_pipeline`), used by every image benchmark so that all methods see
the same features. The SENet/EnSC papers use scattering features + PCA-500 (spec clustering.md §2.1),
which need ``kymatio`` (not available offline); we use the pixel analogue:

    pixels (N, H·W) → [PCA to ``n_components``, optional whitening] → row L2-normalisation

PCA centres the data (scikit-learn ``PCA``); ``center=False`` instead projects on the top eigenvectors
of XᵀX without centring, as SENet's ``feature_generation.py`` does. Without PCA (``n_components=None``)
``center`` subtracts the training mean (digits in spec clustering.md §10.2: "centred, L2 rows").
The pipeline is a scikit-learn ``Pipeline``: fit it on training images, then ``transform`` test /
unseen images with the same projection.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from structlearn.utils.validation import check_int

FEATURE_SUFFIXES = (".npy", ".npz", ".csv", ".txt")


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"file not found: {p}")
    if p.is_dir():
        raise ValueError(f"{p} is a directory, expected a feature file")
    return p


def read_npy(path: str | os.PathLike[str], what: str = "file") -> np.ndarray:
    """A ``.npy`` array, never unpickled; every problem is one line naming ``path``.

    np.load alone calls any file without the NumPy magic "pickled data" and suggests allow_pickle,
    and raises EOFError on an empty file; both are misleading for a user's corrupt/empty file.
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a directory, expected a .npy file")
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p}")
    _check_magic(p, b"\x93NUMPY", what, "a readable .npy file (no NumPy header)")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "pickle" in first:
            first = "it holds Python objects, not numbers"
        raise ValueError(f"{what} {p} is not a readable .npy file ({first})") from None


def check_npz(path: str | os.PathLike[str], what: str = "file") -> Path:
    """Fail in one line when ``path`` is empty or not a zip archive (np.load would call it pickled data)."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a directory, expected a .npz file")
    _check_magic(p, b"PK\x03\x04", what, "a readable .npz file (not a zip archive)")
    return p


def _check_magic(p: Path, magic: bytes, what: str, expected: str) -> None:
    """One-line errors for an unreadable, empty, or wrongly typed file (by its leading bytes)."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(magic))
    except OSError as exc:
        raise ValueError(f"{what} {p} cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise ValueError(f"{what} {p} is empty (0 bytes)")
    if head != magic:
        raise ValueError(f"{what} {p} is not {expected}")


def _numeric(arr: Any, what: str, path: Path) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{path}: {what} must be numeric, got dtype {a.dtype}")
    return a


# Cells that mean "no value" in a first row of numbers (header detection must not swallow that row).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
INDEX_NAMES = ("", "unnamed: 0", "index")  # pandas' header cell of an unnamed / reset index


def _delimiter(line: str) -> str | None:
    """Comma, semicolon or tab when the line holds one (in that order), else runs of whitespace
    (``np.savetxt``'s default)."""
    return next((d for d in (",", ";", "\t") if d in line), None)


def _cells(line: str, delimiter: str | None) -> list[str]:
    return [c.strip().strip("\"'") for c in (line.split(delimiter) if delimiter else line.split())]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _header(cells: list[str], path: Path) -> tuple[list[str] | None, bool]:
    """(header or None, whether column 0 is a pandas row index) from the first row's cells."""
    numeric = [_is_number(c) for c in cells]
    if all(numeric):
        if len(cells) > 1 and cells == [str(i) for i in range(len(cells))]:
            # DataFrame(X).to_csv(index=False): the default column names 0..D-1 parse as numbers.
            warnings.warn(
                f"{path}: first row {','.join(cells[:3])},… read as column names (0, 1, …, D−1), not data",
                UserWarning,
                stacklevel=4,
            )
            return cells, False
        return None, False
    pandas_index = cells[0] == "" and (
        cells[1:] == [str(i) for i in range(len(cells) - 1)] or not all(numeric[1:])
    )
    if (
        not pandas_index
        and any(numeric)
        and all(ok or c.lower() in MISSING_MARKERS for c, ok in zip(cells, numeric, strict=True))
    ):
        j = numeric.index(False)
        raise ValueError(f"{path}: row 1 has a missing value in column {j + 1} ({cells[j]!r})")
    return cells, cells[0].lower() in INDEX_NAMES


def _read_csv(path: Path) -> tuple[list[str] | None, np.ndarray, int]:
    """Header (or None), body and the file line of the body's first row of a delimited text file
    (comma, semicolon, tab or whitespace).

    A header row is detected when the first row is not all numbers (a row of numbers and missing-value
    markers is data with a gap, refused) or is exactly 0, 1, …, D−1 (pandas' default column names). A
    first column headed like a pandas index (empty, ``Unnamed: 0``, ``index``: ``DataFrame.to_csv``'s
    default) is dropped with a warning: row numbers are not a feature. The body is float64, or, when a
    column is not numeric, a str array (a label column of names; :func:`_float_columns` converts the rest).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            lines = iter(fh)
            skipped = 0
            first = ""
            for first in lines:
                if first.strip():
                    break
                skipped += 1
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text file") from None
    if not first.strip():
        raise ValueError(f"{path} is empty")
    delimiter = _delimiter(first)
    cells = _cells(first, delimiter)
    header, index_column = _header(cells, path)
    # An unnamed first column (pandas' default index) is skipped unread: it may hold row names.
    usecols = range(1, len(cells)) if index_column and cells[0] == "" and len(cells) > 1 else None
    if usecols is not None:
        _warn_index_dropped(path, cells[0])
        header = header[1:] if header is not None else None
    kwargs: dict[str, Any] = {
        "delimiter": delimiter,
        "skiprows": skipped + (header is not None or usecols is not None),
        "ndmin": 2,
        "usecols": usecols,
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "loadtxt: input contained no data")  # a header only: ours below
        try:
            body = np.loadtxt(path, dtype=np.float64, **kwargs)
        except ValueError:
            try:  # a column of names (labels as text): read as strings, the caller converts
                body = np.loadtxt(path, dtype=str, **kwargs)
            except ValueError as exc:
                raise ValueError(f"{path}: {str(exc).splitlines()[0]}") from None
            body = np.char.strip(np.char.strip(body), "\"'")
    if body.shape[0] == 0:
        raise ValueError(f"{path} has a header row but no data rows")
    if (
        index_column
        and usecols is None
        and header is not None
        and body.shape[1] > 1
        and _is_row_index(body[:, 0])
    ):
        # A column named "index" / "Unnamed: 0" is dropped only when it holds row numbers.
        _warn_index_dropped(path, header[0])
        header, body = header[1:], body[:, 1:]
    return header, body, kwargs["skiprows"] + 1


def _warn_index_dropped(path: Path, name: str) -> None:
    warnings.warn(
        f"{path}: dropped column 1 ({name or 'no name'}), a row index as pandas writes it",
        UserWarning,
        stacklevel=4,
    )


def _is_row_index(col: np.ndarray) -> bool:
    """Integers rising by one from 0 or 1 (a reset or default pandas index)."""
    try:
        v = col.astype(np.float64)
    except ValueError:
        return False
    return bool(v[0] in (0.0, 1.0) and np.all(np.diff(v) == 1.0))


def _float_columns(body: np.ndarray, path: Path, first_line: int, skip: int | None = None) -> np.ndarray:
    """``body`` without column ``skip``, as float64; a cell that is not a number is a one-line error
    naming its line and column (and, for a column of names, how to declare it a label column)."""
    if skip is None and body.dtype.kind != "U":
        return body  # no copy of a large body
    keep = [j for j in range(body.shape[1]) if skip is None or j != skip % body.shape[1]]
    if body.dtype.kind != "U":
        return body[:, keep]
    try:  # vectorised; the loop below runs only to name a bad cell
        return body[:, keep].astype(np.float64)
    except ValueError:
        pass
    for j in keep:  # error path only: find the first cell that is not a number
        ok = np.array([_is_number(c) for c in body[:, j]])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            hint = "" if ok.any() else f"; if it holds labels, pass label_column={j} (--label-column {j})"
            raise ValueError(
                f"{path}: line {first_line + i}, column {j + 1}: '{body[i, j]}' is not a number{hint}"
            )
    return body[:, keep].astype(object).astype(np.float64)  # what Python's float() reads, NumPy's not


def _column_labels(y: np.ndarray, path: Path) -> np.ndarray:
    """Labels from a text column: numbers as class ids, names (``cat``, ``dog``) as ids in sorted order."""
    if y.dtype.kind == "U":
        try:
            return _as_int_labels(y.astype(object).astype(np.float64), path)  # numbers written as text
        except ValueError:  # names, not numbers (or fractional ids: refused by _as_int_labels)
            if all(_is_number(c) for c in y):
                raise
        return np.unique(y, return_inverse=True)[1].astype(np.int64)
    return _as_int_labels(y, path)


def load_features(
    path: str | os.PathLike[str], *, label_column: int | str | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Features ``X`` (float32, whatever shape the file holds) and labels ``y`` (int64) or ``None``."""
    p = _existing(path)
    suffix = p.suffix.lower()
    if suffix not in FEATURE_SUFFIXES:
        raise ValueError(
            f"{p}: unsupported feature file type {suffix!r}; use one of {', '.join(FEATURE_SUFFIXES)}"
        )
    y: np.ndarray | None = None
    if suffix == ".npy":
        if label_column is not None:
            raise ValueError("label_column applies to .csv files only")
        X = _numeric(read_npy(p, "feature file"), "the array", p)
    elif suffix == ".npz":
        if label_column is not None:
            raise ValueError("label_column applies to .csv files only")
        check_npz(p, "feature file")
        try:
            z = np.load(p, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("not an archive")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{p} is not a readable .npz file ({str(exc).splitlines()[0]})") from None
        with z:
            if "X" not in z.files:
                raise ValueError(f"{p} has no array named 'X' (found: {', '.join(z.files) or 'none'})")
            X = _numeric(z["X"], "'X'", p)
            if "y" in z.files:
                y = _as_int_labels(_numeric(z["y"], "'y'", p), p)
    else:
        header, body, first_line = _read_csv(p)
        if label_column is not None:
            if isinstance(label_column, str) and not label_column.lstrip("-").isdigit():
                if header is None or label_column not in header:
                    raise ValueError(f"{p} has no column named {label_column!r}")
                col = header.index(label_column)
            else:
                col = int(label_column)
                if not -body.shape[1] <= col < body.shape[1]:
                    raise ValueError(f"label_column {col} is out of range for {body.shape[1]} columns")
            y = _column_labels(body[:, col], p)
            X = _float_columns(body, p, first_line, skip=col)
        else:
            X = _float_columns(body, p, first_line)
            _check_no_label_column(header, X, p)
    return X.astype(np.float32, copy=False), y


LABEL_NAMES = ("label", "labels", "y", "target", "class", "cluster")


def _check_no_label_column(header: list[str] | None, body: np.ndarray, path: Path) -> None:
    """Issue 10.6: a CSV whose label column was not named would silently be clustered on the label.

    A header cell named like a label column is refused; otherwise a column of small non-negative
    integers among non-integer columns draws a warning (it may be a legitimate count feature).
    """
    if header is not None:
        named = [h for h in header if h.strip().strip("\"'").lower() in LABEL_NAMES]
        if named:
            raise ValueError(
                f"{path} has a column named {named[0]!r}: pass label_column={named[0]!r} "
                f"(--label-column {named[0]}) to use it as labels, or remove it"
            )
    if body.shape[1] < 2 or body.shape[0] < 4:
        return
    integral = np.all(body == np.round(body), axis=0)
    if integral.all() or not integral.any():
        return
    for j in np.flatnonzero(integral):
        col = body[:, j]
        n_values = np.unique(col).size
        if col.min() >= 0 and 1 < n_values <= max(2, int(np.sqrt(body.shape[0]))):
            name = f"{header[j]!r}" if header is not None and j < len(header) else f"{j}"
            warnings.warn(
                f"{path}: column {name} holds {n_values} distinct small integers among real-valued "
                f"columns; if it is a label, pass label_column={j} (--label-column {j})",
                UserWarning,
                stacklevel=3,
            )
            return


def _as_int_labels(y: np.ndarray, path: Path) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{path}: labels must be 1-D, got shape {y.shape}")
    if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or not np.all(y == np.round(y))):
        raise ValueError(f"{path}: labels must be integer class ids")
    return y.astype(np.int64)


def load_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """A 1-D integer label vector from ``.npy``, ``.npz`` (key ``y``), or a one-column ``.csv``/``.txt``."""
    p = _existing(path)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        _, y = load_features(p)
        if y is None:
            raise ValueError(f"{p} has no array named 'y'")
        return y
    if suffix == ".npy":
        return _as_int_labels(_numeric(read_npy(p, "label file"), "labels", p), p)
    if suffix in (".csv", ".txt"):
        header, body, _ = _read_csv(p)
        if body.shape[1] != 1:
            raise ValueError(f"{p}: a label file must have one column, found {body.shape[1]}")
        y = body[:, 0]
        if header is not None and y.dtype.kind == "U" and header[0] in y:
            y = np.concatenate([[header[0]], y])  # a first name that recurs is a label, not a column name
        return _column_labels(y, p)
    raise ValueError(f"{p}: unsupported label file type {suffix!r}; use .npy, .npz, .csv or .txt")


class UncenteredPCA(TransformerMixin, BaseEstimator):
    """Projection on the top ``n_components`` eigenvectors of XᵀX (no centring), optionally whitened."""

    def __init__(self, n_components: int = 500, *, whiten: bool = False) -> None:
        self.n_components = n_components
        self.whiten = whiten

    def fit(self, X: Any, y: Any = None) -> UncenteredPCA:
        X = np.asarray(X, dtype=np.float64)
        k = check_int("n_components", self.n_components, minimum=1, maximum=min(X.shape))
        evals, evecs = np.linalg.eigh(X.T @ X)
        order = np.argsort(evals)[::-1][:k]
        self.components_ = evecs[:, order].T
        self.singular_values_ = np.sqrt(np.maximum(evals[order], 0.0))
        self.n_features_in_ = X.shape[1]
        self.n_samples_ = X.shape[0]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        Z = np.asarray(X, dtype=np.float64) @ self.components_.T
        if self.whiten:
            # Unit mean square per component over the fit set (sklearn's whitening, uncentred).
            Z /= np.maximum(self.singular_values_, 1e-12) / np.sqrt(max(self.n_samples_ - 1, 1))
        return Z.astype(np.float32)


def image_feature_pipeline(
    n_components: int | None = 500,
    *,
    whiten: bool = False,
    center: bool = True,
    normalize: bool = True,
    random_state: int = 0,
) -> Pipeline:
    """The documented image feature pipeline: [PCA (centred or not), whitening] → [row L2 norm].

    ``n_components=None`` skips the projection (then ``center`` only subtracts the training mean).
    Fit on training images flattened to (N, H·W); apply ``transform`` to any other split.
    """
    steps: list[tuple[str, Any]] = []
    if n_components is None and center:
        steps.append(("center", StandardScaler(with_std=False)))
    if n_components is not None:
        check_int("n_components", n_components, minimum=1)
        if center:
            pca = PCA(
                n_components=n_components, whiten=whiten, svd_solver="randomized", random_state=random_state
            )
        else:
            pca = UncenteredPCA(n_components=n_components, whiten=whiten)
        steps.append(("pca", pca))
    if normalize:
        steps.append(("l2", Normalizer(norm="l2")))
    if not steps:
        raise ValueError("the pipeline is empty: set n_components or normalize=True")
    return Pipeline(steps)
