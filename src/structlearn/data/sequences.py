"""Frame sequences for motion segmentation: a synthetic generator and a loader for real features.

Synthetic "videos" (our design, for TR2C arXiv 2506.21249 and its baselines). One sequence holds
``n_segments`` contiguous segments, each performing one of ``n_motions`` motions; segments have varying
lengths and a motion recurs (no two consecutive segments share a motion, every motion appears). Frame t
of a segment performing motion k is

    x_t = √α · s(u_t) + √(1 − α) · m_k(u_t) + σ · ε_t / √D,

- u_t = (cos φ_t, sin φ_t) ∈ R^{2m}: m phases advancing at motion-specific speeds with a smooth jitter,
  so the frames trace a smooth curve on an m-dimensional torus (the motion's cycle);
- m_k(u) = tanh(u A_k + b_k) B_k: motion k's own non-linear embedding of that torus in R^D (its
  manifold spans an ``specific_dim``-dimensional subspace);
- s(u) = tanh(u A_0 + b_0) B_0 + drift_t: the appearance every motion shares at the same phase ("one
  person performing different actions"), plus a slow AR(1) drift over the whole video;
- α = ``shared`` ∈ [0, 1) is the difficulty knob: the fraction of signal energy that is common to all
  motions. Both parts are centred over the sequence and scaled to unit mean squared norm, so at large α
  frames of different motions at the same phase are close in Euclidean distance (per-frame k-means and
  kNN spectral clustering group frames by phase), while each motion still occupies its own
  low-dimensional subspace and changes slowly in time (what temporal subspace methods exploit);
- σ = ``noise``: isotropic Gaussian noise, as a ratio of the signal's RMS norm.

Independent sequences come from one seed (``numpy.random.SeedSequence.spawn``); each has its own motions.

Real features: :func:`load_feature_sequence` reads one video's per-frame features (HoG, CLIP, ...):

- ``video.npz`` with arrays ``features`` (T × D) and, optionally, ``labels`` (T,) — ``X`` / ``y``
  are accepted as key aliases;
- ``video.npy`` (T × D) with labels in ``video.labels.npy`` beside it (found automatically) or passed
  explicitly.

:func:`load_feature_sequences` loads every video of a folder in name order.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from structlearn.data.features import check_npz, read_npy
from structlearn.utils.validation import check_features, check_float, check_int, check_labels

LABELS_SUFFIX = ".labels.npy"
FEATURE_KEYS = ("features", "X")
LABEL_KEYS = ("labels", "y")


@dataclass(frozen=True)
class MotionSequenceConfig:
    """Parameters of one synthetic motion sequence (see the module docstring for the model)."""

    n_frames: int = 1000
    n_motions: int = 4
    n_segments: int = 8
    ambient_dim: int = 64
    latent_dim: int = 2  # m: dimension of each motion's torus
    specific_dim: int = 6  # width of each motion's embedding (dimension of the subspace it spans)
    shared_dim: int = 12  # width of the shared embedding
    curvature: float = 1.5  # gain inside tanh: larger bends each manifold through more dimensions
    shared: float = 0.5  # α: difficulty, fraction of signal energy shared by all motions
    noise: float = 0.2  # σ: noise RMS norm relative to the signal's
    drift: float = 0.3  # RMS of the slow appearance drift, relative to the shared part
    period: tuple[float, float] = (20.0, 60.0)  # range of cycle lengths in frames
    min_segment: int = 30  # shortest segment, in frames

    def __post_init__(self) -> None:
        check_int("n_motions", self.n_motions, minimum=2)
        check_int("n_segments", self.n_segments, minimum=self.n_motions)
        check_int("ambient_dim", self.ambient_dim, minimum=2)
        check_int("latent_dim", self.latent_dim, minimum=1)
        check_int("specific_dim", self.specific_dim, minimum=1)
        check_int("shared_dim", self.shared_dim, minimum=1)
        check_int("min_segment", self.min_segment, minimum=1)
        check_int("n_frames", self.n_frames, minimum=self.n_segments * self.min_segment)
        check_float("shared", self.shared, nonnegative=True)
        if self.shared >= 1.0:
            raise ValueError(
                f"shared must be < 1 (some motion-specific signal must remain), got {self.shared}"
            )
        check_float("noise", self.noise, nonnegative=True)
        check_float("drift", self.drift, nonnegative=True)
        check_float("curvature", self.curvature, positive=True)
        if len(self.period) != 2:
            raise ValueError(f"period must be a (min, max) pair, got {self.period!r}")
        lo = check_float("period[0]", self.period[0], positive=True)
        hi = check_float("period[1]", self.period[1], positive=True)
        if lo > hi:
            raise ValueError(f"period must be (min, max) with min <= max, got {self.period!r}")


@dataclass(frozen=True)
class MotionSequence:
    """One sequence: frames ``X`` (T × D, float32), per-frame motion ``y`` (T,), and its segments."""

    X: np.ndarray
    y: np.ndarray
    segments: np.ndarray  # (S, 3) int64 rows: start, end (exclusive), motion

    @property
    def n_frames(self) -> int:
        return int(self.X.shape[0])


def _motion_order(n_segments: int, n_motions: int, rng: np.random.Generator) -> np.ndarray:
    """Motion of each segment: consecutive segments differ and every motion appears."""
    for _ in range(100):
        # Each step picks one of the K − 1 motions different from the previous one.
        steps = rng.integers(1, n_motions, size=n_segments - 1)
        order = np.concatenate([[rng.integers(n_motions)], steps]).cumsum() % n_motions
        if np.unique(order).size == n_motions:
            return order.astype(np.int64)
    # Rare fallback: a permutation, then recurring motions appended without consecutive repeats.
    order = list(rng.permutation(n_motions))
    while len(order) < n_segments:
        order.append(int((order[-1] + rng.integers(1, n_motions)) % n_motions))
    return np.asarray(order, dtype=np.int64)


def _segment_lengths(cfg: MotionSequenceConfig, rng: np.random.Generator) -> np.ndarray:
    spare = cfg.n_frames - cfg.n_segments * cfg.min_segment
    shares = rng.dirichlet(np.full(cfg.n_segments, 2.0))
    extra = np.floor(shares * spare).astype(np.int64)
    extra[rng.integers(cfg.n_segments)] += spare - extra.sum()
    return cfg.min_segment + extra


def _smooth_noise(n: int, dim: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) noise with unit variance per coordinate, (n, dim), via a linear filter."""
    from scipy.signal import lfilter

    e = rng.standard_normal((n, dim)) * np.sqrt(1.0 - rho**2)
    e[0] /= np.sqrt(1.0 - rho**2)
    return lfilter([1.0], [1.0, -rho], e, axis=0)


def _random_embedding(
    in_dim: int, width: int, out_dim: int, gain: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # u has unit norm per phase pair, so gain/√(in_dim/2) keeps the pre-activation scale ≈ gain.
    A = rng.standard_normal((in_dim, width)) * (gain / np.sqrt(in_dim / 2))
    b = rng.uniform(-0.5, 0.5, width)
    B = rng.standard_normal((width, out_dim)) / np.sqrt(width)
    return A, b, B


def _embed(u: np.ndarray, params: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    A, b, B = params
    return np.tanh(u @ A + b) @ B


def _centre_scale(M: np.ndarray) -> np.ndarray:
    M = M - M.mean(axis=0)
    rms = np.sqrt(np.mean(np.sum(M**2, axis=1)))
    return M / rms if rms > 0 else M


def make_motion_sequence(
    config: MotionSequenceConfig | None = None, seed: int | np.random.SeedSequence = 0
) -> MotionSequence:
    """Generate one synthetic motion sequence (deterministic given ``seed``)."""
    cfg = config or MotionSequenceConfig()
    rng = np.random.default_rng(seed)
    K, m, D = cfg.n_motions, cfg.latent_dim, cfg.ambient_dim

    order = _motion_order(cfg.n_segments, K, rng)
    lengths = _segment_lengths(cfg, rng)
    ends = lengths.cumsum()
    starts = ends - lengths
    y = np.repeat(order, lengths)
    T = cfg.n_frames

    # Phases: motion-specific base speeds (one per latent coordinate), a smooth ±20 % jitter, and a
    # random phase at each segment start, so a recurring motion is not a copy of its first segment.
    lo, hi = cfg.period
    speed = 2 * np.pi / rng.uniform(lo, hi, size=(K, m))
    jitter = 1.0 + 0.2 * _smooth_noise(T, m, 0.95, rng)
    dphi = speed[y] * jitter
    seg_start = np.zeros(T, dtype=bool)
    seg_start[starts] = True
    dphi[seg_start] = rng.uniform(0, 2 * np.pi, size=(cfg.n_segments, m))
    # Cumulative phase restarted at every segment: subtract the running total at segment starts.
    total = dphi.cumsum(axis=0)
    offset = np.repeat(total[starts] - dphi[starts], lengths, axis=0)
    phi = total - offset
    u = np.concatenate([np.cos(phi), np.sin(phi)], axis=1)

    # Motion-specific embeddings, evaluated for every frame at once and picked by label.
    specific = np.zeros((T, D))
    for k in range(K):  # K small: one vectorised embedding per motion
        mask = y == k
        specific[mask] = _embed(u[mask], _random_embedding(2 * m, cfg.specific_dim, D, cfg.curvature, rng))
    shared_params = _random_embedding(2 * m, cfg.shared_dim, D, cfg.curvature, rng)
    shared = _embed(u, shared_params)
    if cfg.drift > 0:
        # Slow drift inside the shared subspace (rows of B_0), AR(1) with a ~200-frame memory.
        drift = _smooth_noise(T, cfg.shared_dim, 0.995, rng) @ shared_params[2]
        shared = _centre_scale(shared) + cfg.drift * _centre_scale(drift)

    alpha = cfg.shared
    signal = np.sqrt(alpha) * _centre_scale(shared) + np.sqrt(1.0 - alpha) * _centre_scale(specific)
    X = signal + cfg.noise * rng.standard_normal((T, D)) / np.sqrt(D)
    segments = np.stack([starts, ends, order], axis=1).astype(np.int64)
    return MotionSequence(X=X.astype(np.float32), y=y.astype(np.int64), segments=segments)


def make_motion_sequences(
    n_sequences: int, config: MotionSequenceConfig | None = None, seed: int = 0
) -> list[MotionSequence]:
    """``n_sequences`` independent sequences (own motions, layout, noise) derived from one seed."""
    check_int("n_sequences", n_sequences, minimum=1)
    check_int("seed", seed, minimum=0)
    children = np.random.SeedSequence(seed).spawn(n_sequences)
    return [make_motion_sequence(config, child) for child in children]


def segments_from_labels(labels: Any) -> np.ndarray:
    """Run-length encoding of per-frame labels: (R, 3) rows of start, end (exclusive), label."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    change = np.flatnonzero(y[1:] != y[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [y.size]])
    return np.stack([starts, ends, y[starts]], axis=1).astype(np.int64)


# --------------------------------------------------------------------------- real per-frame features


def _check_frames(X: np.ndarray, name: str) -> np.ndarray:
    """2-D finite features; NaN frames are reported by index (the first few) before anything else."""
    arr = np.asarray(X)
    if arr.ndim == 2 and arr.dtype.kind == "f":
        bad_rows = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if bad_rows.size:
            first = ", ".join(map(str, bad_rows[:5])) + (", ..." if bad_rows.size > 5 else "")
            raise ValueError(
                f"{name} has {bad_rows.size} frames with NaN or infinite values (frames {first})"
            )
    return check_features(arr, name=name, reject_constant=False)


def _load_npy(path: Path) -> np.ndarray:
    # Empty files, random bytes and folders get one-line messages there (issue 11 items 7, 10).
    return read_npy(path, "file")


def load_feature_sequence(
    path: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """One video's per-frame features (T × D, float32) and its labels (T,) or ``None``.

    ``path`` is a ``.npz`` (keys ``features``/``X`` and optional ``labels``/``y``) or a ``.npy``
    whose labels, if ``labels`` is not given, are read from ``<stem>.labels.npy`` when that exists.
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"feature file {p} is a directory")
    if not p.is_file():
        raise FileNotFoundError(f"no such feature file: {p}")
    y: Any = None
    if p.suffix == ".npz":
        check_npz(p, "feature file")
        try:
            with np.load(p, allow_pickle=False) as data:
                fkey = next((k for k in FEATURE_KEYS if k in data.files), None)
                if fkey is None:
                    raise ValueError(
                        f"{p}: no features array (expected one of keys {', '.join(FEATURE_KEYS)})"
                    )
                X = data[fkey]
                lkey = next((k for k in LABEL_KEYS if k in data.files), None)
                y = data[lkey] if lkey is not None else None
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
            if str(exc).startswith(str(p)):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{p}: cannot be read as .npz ({first})") from None
    elif p.suffix == ".npy":
        X = _load_npy(p)
        sibling = p.with_name(p.name[: -len(".npy")] + LABELS_SUFFIX)
        if labels is None and sibling.is_file():
            labels = sibling
    else:
        raise ValueError(f"{p}: features must be a .npy or .npz file")
    if labels is not None:
        lp = Path(labels)
        if lp.is_dir():
            raise ValueError(f"label file {lp} is a directory")
        if not lp.is_file():
            raise FileNotFoundError(f"no such label file: {lp}")
        y = _load_npy(lp)
    X = _check_frames(X, f"features {p.name}")
    if y is not None:
        y = check_labels(y, X.shape[0], name=f"labels of {p.name}")
    return X, y


def load_feature_sequences(
    folder: str | os.PathLike[str],
) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """Every video in ``folder`` (``*.npz`` and ``*.npy`` other than label files), in name order."""
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    files = sorted(
        f
        for f in root.iterdir()
        if f.is_file() and (f.suffix == ".npz" or (f.suffix == ".npy" and not f.name.endswith(LABELS_SUFFIX)))
    )
    if not files:
        raise ValueError(f"{root}: no .npy or .npz feature files")
    out = []
    for f in files:
        X, y = load_feature_sequence(f)
        out.append((f.stem, X, y))
    return out
