"""Input checks shared by every public entry point.

Each check raises ``ValueError`` with one line that names the offending argument and the problem,
so that the CLI can print it and exit with code 2 instead of a traceback from deep inside.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


class NonNumericError(ValueError, TypeError):
    """Non-numeric entries: a ValueError like every input error here, and the TypeError that
    scikit-learn raises (and its estimator checks expect) for the same input."""


def _as_numpy(X: Any, name: str) -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if sp.issparse(X):
        raise ValueError(f"{name} is a sparse matrix; dense data is required (use X.toarray())")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype == object:
        # Object arrays holding plain numbers are accepted (as scikit-learn does); anything else is not.
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise NonNumericError(f"{name} must be numeric: {str(exc).splitlines()[0]}") from None
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real: Complex data not supported")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def check_features(
    X: Any,
    *,
    name: str = "X",
    min_samples: int = 1,
    min_samples_reason: str | None = None,
    n_features: int | None = None,
    dtype: type = np.float32,
    reject_constant: bool = True,
    estimator: str | None = None,
) -> np.ndarray:
    """Validate a feature matrix (n_samples, n_features) and return it as a C-contiguous array.

    Rejects: non-numeric data, arrays that are not 2-D, empty arrays, NaN/Inf entries, fewer than
    ``min_samples`` rows, a column count different from ``n_features`` (e.g. the one seen in
    ``fit``), and, when ``reject_constant``, matrices whose rows are all identical.
    """
    arr = _as_numpy(X, name)
    if arr.ndim != 2:
        # "Reshape your data" is scikit-learn's wording, which its estimator checks match on.
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got an array of shape {arr.shape}. "
            "Reshape your data with X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        what = "sample" if arr.shape[0] == 0 else "feature"
        raise ValueError(
            f"{name} is empty: 0 {what}(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if arr.dtype.kind == "f":  # before the cast: a finite 1e299 would become inf in float32
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"{name} contains NaN or infinite values ({int(bad.sum())} entries)")
    check_value_range(arr, name)
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if arr.shape[0] < min_samples:
        why = f" ({min_samples_reason})" if min_samples_reason else ""
        raise ValueError(f"{name} has {arr.shape[0]} samples, fewer than the {min_samples} required{why}")
    if n_features is not None and arr.shape[1] != n_features:
        who = estimator or "the estimator"
        # Same wording as scikit-learn, whose estimator checks match on it.
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but {who} is expecting {n_features} features as input"
        )
    if reject_constant and arr.shape[0] > 1 and np.all(np.ptp(arr, axis=0) == 0):
        raise ValueError(f"{name} is constant: all {arr.shape[0]} samples are identical")
    return arr


# Largest |x| accepted: float32 squared distances and Gram entries (~ d·max²) stay far below
# float32's 3.4e38, and the smallest: squares stay above float32's normal range (1.2e-38).
MAX_ABS = 2.0**50  # ≈ 1.1e15
MIN_MAX_ABS = 2.0**-50  # ≈ 8.9e-16


def check_value_range(arr: np.ndarray, name: str = "X") -> None:
    """Reject data whose largest magnitude lies outside [2⁻⁵⁰, 2⁵⁰] (issue 11 item 4).

    Outside that range the float32 arithmetic of every method overflows or underflows (k-means on
    data ×1e30 put every sample in one cluster, exit 0). We refuse instead of rescaling silently,
    because a rescaled ``fit`` would not match an unscaled ``predict``; dividing the data by a
    constant is exact for the scale-invariant methods and is the user's decision. All-zero data is
    left to the constant-data check.
    """
    if arr.size == 0:
        return
    m = float(np.max(np.abs(arr.astype(np.float64, copy=False))))
    if m > MAX_ABS or 0.0 < m < MIN_MAX_ABS:
        raise ValueError(
            f"{name} has values of magnitude up to {m:.3g}, outside the supported range "
            f"[{MIN_MAX_ABS:.2g}, {MAX_ABS:.2g}]: rescale the data (e.g. divide it by its largest |value|)"
        )


def check_labels(y: Any, n_samples: int, *, name: str = "labels") -> np.ndarray:
    """Validate a 1-D integer label vector of length ``n_samples``."""
    arr = _as_numpy(y, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has length {arr.shape[0]} but there are {n_samples} samples")
    if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))):
        raise ValueError(f"{name} must hold integer class ids")
    return arr.astype(np.int64)


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (bools and floats rejected) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return v


def check_float(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    maximum: float | None = None,
) -> float:
    """A finite real number, optionally > 0 or >= 0 and <= maximum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if nonnegative and v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return v


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of a fixed set of names."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(map(str, options))}")
    return str(value)


def check_adam_args(lr: Any, betas: Any, eps: Any, weight_decay: Any) -> None:
    """Adam-family hyper-parameters: lr >= 0, betas a pair in [0, 1), eps >= 0, weight_decay >= 0."""
    check_float("lr", lr, nonnegative=True)
    if isinstance(betas, str | bytes) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        v = check_float(f"betas[{i}]", b, nonnegative=True)
        if v >= 1.0:
            raise ValueError(f"betas[{i}] must be < 1, got {v}")
    check_float("eps", eps, nonnegative=True)
    check_float("weight_decay", weight_decay, nonnegative=True)


def check_device(name: str, value: Any) -> torch.device:
    """A torch device string or object (``"cpu"``, ``"cuda:1"``, …) as a ``torch.device`` that exists
    here: CPU, or CUDA / MPS when this torch build and machine have it (else a one-line ValueError
    now, not an AssertionError from deep inside the first tensor transfer)."""
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"invalid {name} {value!r}: expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {value!r}: CUDA is not available here (use cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {value!r}: only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{name} {value!r}: MPS is not available here (use cpu)")
    elif dev.type != "cpu":
        raise ValueError(f"{name} {value!r} is not supported: use cpu, cuda or cuda:N")
    return dev


def check_id_tensor(t: Any, name: str, dim: int, what: str = "class ids") -> torch.Tensor:
    """Integer ids of any integer dtype as int64, ``dim``-dimensional; float, bool or non-tensor ids are
    a one-line ValueError. Metadata checks only: no host-device sync (the range is checked lazily, by
    :func:`id_range_error` once torch has refused an id)."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of {what}, got {type(t).__name__}")
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ValueError(f"{name} must hold integer {what}, got dtype {t.dtype}")
    if t.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {tuple(t.shape)}")
    return t.long()


def id_range_error(
    t: torch.Tensor, name: str, upper: int, bound: str, what: str = "class ids", ignore: int | None = None
) -> ValueError:
    """The one-line error for ids outside [0, upper) (``bound`` names the limit, e.g. "n_classes").
    Built only after torch has refused an id (IndexError on the CPU), so valid batches cost no sync;
    on a GPU an out-of-range id is torch's device-side assert."""
    ok = (t >= 0) & (t < upper)
    if ignore is not None:
        ok |= t == ignore
    bad = t[~ok]
    example = f" (e.g. {int(bad[0])}; {bad.numel()} entries)" if bad.numel() else ""
    extra = f"; {ignore} is the ignore index" if ignore is not None else ""
    return ValueError(f"{name} holds {what} outside [0, {bound}={upper}){example}{extra}")


def check_not_an_input(out: Any, flag: str, inputs: Iterable[Any]) -> None:
    """Refuse an output path that names one of the command's input files (it would be overwritten)."""
    if out is None:
        return
    target = Path(out).resolve()
    for src in inputs:
        if src is not None and Path(src).resolve() == target:
            raise ValueError(f"{flag} {out} is an input file of this command; it would be overwritten")
