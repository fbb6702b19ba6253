"""Synthetic union of linear subspaces (UoS), the standard test bed of subspace clustering.

Model (Elhamifar & Vidal, SSC, arXiv 1203.1005 §6; SENet arXiv 2110.04318 §5; spec clustering.md §10.1):
subspace S_ℓ = span(U_ℓ) with U_ℓ ∈ R^{D×d_ℓ} orthonormal; a sample of S_ℓ is

    x = U_ℓ a + e,   a = g / ‖g‖, g ~ N(0, I_{d_ℓ}),   e ~ N(0, (noise²/D) I_D)

so the clean part has unit norm and ``noise`` is the expected norm of the noise vector.

Angle control: the bases are random (uniform on the Stiefel manifold, via QR of a Gaussian matrix)
unless ``shared_dim = s > 0``, in which case every pair of subspaces shares an s-dimensional common
subspace (s principal angles equal to 0), or ``max_angle`` (degrees) is set, in which case each basis is
a random rotation of a common reference basis U_0 towards its orthogonal complement: the principal
angles between S_ℓ and S_0 are drawn uniformly in [0, ``max_angle``], so any two subspaces are within
about 2·``max_angle`` of each other. Small angles make the problem hard.

Non-linear UoS (spec §10.4): with ``nonlinear=True`` the samples are pushed through a fixed random
two-layer tanh network x ↦ W₂ tanh(W₁ x) (weights drawn from the same seed), so each cluster lies on a
smooth manifold rather than a subspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from structlearn.utils.seed import rng_seed
from structlearn.utils.validation import check_float, check_int


def _per_subspace(name: str, value: int | Sequence[int], k: int, minimum: int) -> list[int]:
    """Broadcast an int to k subspaces, or check a list of length k."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        vals = list(value)
        if len(vals) != k:
            raise ValueError(f"{name} has {len(vals)} entries but n_subspaces={k}")
        return [check_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(vals)]
    return [check_int(name, value, minimum=minimum)] * k


def random_orthonormal(D: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """A D×d matrix with orthonormal columns, uniformly distributed (QR of a Gaussian, signs fixed)."""
    Q, R = np.linalg.qr(rng.standard_normal((D, d)))
    return Q * np.sign(np.diag(R))[None, :]


def principal_angles(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between span(U) and span(V), both orthonormal."""
    s = np.linalg.svd(U.T @ V, compute_uv=False)
    return np.arccos(np.clip(s, -1.0, 1.0))


def _bases(
    K: int, D: int, dims: list[int], shared_dim: int, max_angle: float | None, rng: np.random.Generator
) -> list[np.ndarray]:
    if max_angle is not None:
        d_max = max(dims)
        if 2 * d_max > D:
            raise ValueError(f"max_angle needs 2*max(subspace_dim) <= ambient_dim, got {2 * d_max} > {D}")
        Q = random_orthonormal(D, 2 * d_max, rng)
        U0, W = Q[:, :d_max], Q[:, d_max:]  # reference basis and part of its complement
        bases = []
        for d in dims:
            # Rotate each reference direction towards a random orthonormal set of complement directions.
            theta = rng.uniform(0.0, np.deg2rad(max_angle), size=d)
            mix = random_orthonormal(d_max, d, rng)
            # Columns stay orthonormal: the two parts live in orthogonal spaces with orthonormal mixes.
            B = U0 @ mix * np.cos(theta) + W @ random_orthonormal(d_max, d, rng) * np.sin(theta)
            bases.append(B)
        return bases
    if shared_dim:
        if shared_dim >= min(dims):
            raise ValueError(f"shared_dim={shared_dim} must be < min(subspace_dim)={min(dims)}")
        common = random_orthonormal(D, shared_dim, rng)
        bases = []
        for d in dims:
            # Own directions drawn in the complement of the common part.
            G = rng.standard_normal((D, d - shared_dim))
            G -= common @ (common.T @ G)
            own = np.linalg.qr(G)[0]
            bases.append(np.hstack([common, own]))
        return bases
    return [random_orthonormal(D, d, rng) for d in dims]


def make_union_of_subspaces(
    n_subspaces: int,
    ambient_dim: int,
    subspace_dim: int | Sequence[int],
    n_per_subspace: int | Sequence[int],
    noise: float = 0.0,
    *,
    shared_dim: int = 0,
    max_angle: float | None = None,
    nonlinear: bool = False,
    hidden_dim: int | None = None,
    shuffle: bool = True,
    return_bases: bool = False,
    random_state: Any = None,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Sample points from a union of ``n_subspaces`` linear subspaces of R^{ambient_dim}.

    Returns ``X`` (N, D) float32, ``y`` (N,) int64 and, with ``return_bases``, the list of D×d_ℓ
    orthonormal bases. ``shared_dim`` and ``max_angle`` (degrees, in (0, 90]) are mutually exclusive
    controls of the pairwise principal angles (see the module docstring). ``nonlinear`` applies a fixed
    random tanh network with ``hidden_dim`` units (default 2·D); the bases then describe the latent
    linear model, not the output.
    """
    K = check_int("n_subspaces", n_subspaces, minimum=1)
    D = check_int("ambient_dim", ambient_dim, minimum=1)
    dims = _per_subspace("subspace_dim", subspace_dim, K, 1)
    counts = _per_subspace("n_per_subspace", n_per_subspace, K, 1)
    if max(dims) > D:
        raise ValueError(f"subspace_dim {max(dims)} exceeds ambient_dim {D}")
    noise = check_float("noise", noise, nonnegative=True)
    shared_dim = check_int("shared_dim", shared_dim, minimum=0)
    if max_angle is not None:
        max_angle = check_float("max_angle", max_angle, positive=True, maximum=90.0)
        if shared_dim:
            raise ValueError("set at most one of shared_dim and max_angle")
    rng = np.random.default_rng(rng_seed(random_state))
    bases = _bases(K, D, dims, shared_dim, max_angle, rng)

    blocks = []
    for U, n in zip(bases, counts, strict=True):
        A = rng.standard_normal((n, U.shape[1]))
        A /= np.linalg.norm(A, axis=1, keepdims=True)
        blocks.append(A @ U.T)
    X = np.concatenate(blocks)
    y = np.repeat(np.arange(K), counts)
    # Drawn even when noise = 0 so that the same seed gives the same clean points at every noise level.
    X = X + rng.standard_normal(X.shape) * (noise / np.sqrt(D))
    if nonlinear:
        h = D * 2 if hidden_dim is None else check_int("hidden_dim", hidden_dim, minimum=1)
        W1 = rng.standard_normal((D, h)) * (2.0 / np.sqrt(D))  # gain 2: tanh visibly non-linear
        W2 = rng.standard_normal((h, D)) / np.sqrt(h)
        X = np.tanh(X @ W1) @ W2
    if shuffle:
        perm = rng.permutation(len(y))
        X, y = X[perm], y[perm]
    out = (np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64))
    return (*out, bases) if return_bases else out
