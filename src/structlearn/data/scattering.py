"""Scattering features of SENet (arXiv 2110.04318) and NeuNcut (arXiv 2503.09260), spec clustering.md §2.1.

Recipe (the papers' ``feature_generation.py``, re-implemented from its description):

1. images (N, 28, 28) are **resized** (bilinear interpolation, not padded) to 32 × 32;
2. a 2-D scattering transform of order 2 (Mallat 2012, arXiv 1101.2286; Bruna & Mallat 2013,
   arXiv 1203.1513) with J = 3 scales and L = 8 angles: S₀x = x ⋆ φ_J, S₁x = |x ⋆ ψ_{j,θ}| ⋆ φ_J,
   S₂x = ||x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2}| ⋆ φ_J (j1 < j2), subsampled by 2^J: 1 + JL + L²J(J−1)/2 = 217
   channels of 4 × 4 for J = 3, L = 8;
3. each channel of each image divided by its ∞-norm over the 16 positions (max |·|), so every channel
   lies in [−1, 1];
4. flattened (3,472 dims), projected on the top 500 eigenvectors of XᵀX (uncentred PCA, eigh);
5. rows L2-normalised.

The transform comes from the optional ``kymatio`` package (0.3): ``pip install 'structlearn[scattering]'``
or ``pip install kymatio``. Only its 2-D torch frontend is imported: ``kymatio.torch`` also imports the
3-D transform, which needs ``scipy.special.sph_harm`` (removed in SciPy 1.17).

The features are cached as ``.npy`` under :func:`structlearn.data.cache.cache_dir` keyed by a hash of the
image bytes and every parameter; nothing downloads.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from structlearn.data.cache import cache_dir
from structlearn.data.features import UncenteredPCA
from structlearn.utils.validation import check_int

KYMATIO_INSTALL = "install the optional scattering extra: pip install 'structlearn[scattering]' (kymatio)"


def kymatio_available() -> bool:
    """Whether kymatio's 2-D torch scattering can be imported."""
    try:
        _scattering_class()
    except ImportError:
        return False
    return True


def _scattering_class() -> Any:
    try:
        from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D
    except ImportError as exc:  # kymatio missing or broken
        raise ImportError(f"scattering features need kymatio: {KYMATIO_INSTALL} ({exc})") from exc
    return ScatteringTorch2D


def n_scattering_channels(J: int, L: int = 8) -> int:
    """1 + JL + L²J(J−1)/2: order 0, order 1 (one per scale and angle), order 2 (j1 < j2)."""
    return 1 + J * L + L * L * J * (J - 1) // 2


def _check_images(images: Any) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(f"images must have shape (N, H, W), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("images contain NaN or infinite values")
    return x


def scattering_transform(
    images: Any,
    *,
    J: int = 3,
    L: int = 8,
    size: int = 32,
    batch_size: int = 500,
    progress: bool = True,
) -> np.ndarray:
    """Scattering coefficients (N, 1 + JL + L²J(J−1)/2, size/2^J, size/2^J) of images resized to size².

    Images are resized with bilinear interpolation (as torchvision's ``Resize`` on 28 × 28 MNIST);
    batches of ``batch_size`` images with a tqdm progress bar on stderr.
    """
    x = _check_images(images)
    J = check_int("J", J, minimum=1)
    L = check_int("L", L, minimum=1)
    size = check_int("size", size, minimum=2**J)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if size % 2**J:
        raise ValueError(f"size must be a multiple of 2**J = {2**J}, got {size}")
    transform = _scattering_class()(J=J, shape=(size, size), L=L)
    from tqdm.auto import tqdm

    out = np.empty((len(x), n_scattering_channels(J, L), size >> J, size >> J), dtype=np.float32)
    starts = range(0, len(x), batch_size)
    for s in tqdm(starts, desc="scattering", unit="batch", disable=not progress):
        xb = torch.from_numpy(x[s : s + batch_size])
        if xb.shape[-2:] != (size, size):
            xb = torch.nn.functional.interpolate(
                xb[:, None], size=(size, size), mode="bilinear", align_corners=False
            )[:, 0]
        with torch.no_grad():
            out[s : s + batch_size] = transform(xb.contiguous()).numpy()
    return out


def normalize_channels(S: np.ndarray) -> np.ndarray:
    """Each channel of each image divided by its ∞-norm over positions (all-zero channels stay zero)."""
    if S.ndim < 3:
        raise ValueError(f"scattering coefficients must have shape (N, C, ...), got {S.shape}")
    flat = S.reshape(S.shape[0], S.shape[1], -1)
    norm = np.abs(flat).max(axis=2, keepdims=True)
    return (flat / np.where(norm > 0, norm, 1.0)).astype(np.float32).reshape(S.shape)


def _cache_key(x: np.ndarray, params: dict[str, Any]) -> str:
    h = hashlib.sha256(np.ascontiguousarray(x).view(np.uint8).data)
    h.update(json.dumps({**params, "shape": list(x.shape)}, sort_keys=True).encode())
    return h.hexdigest()[:20]


def scattering_features(
    images: Any,
    n_components: int | None = 500,
    *,
    J: int = 3,
    L: int = 8,
    size: int = 32,
    batch_size: int = 500,
    cache: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """The papers' features (module docstring): scattering → channel ∞-norm → uncentred PCA → L2 rows.

    Returns float32 (N, n_components) (``n_components=None``: no projection). The PCA is fitted on
    all the images given (the papers fit it on train + test, 70k for Fashion-MNIST: clustering is
    transductive). Cached under ``cache_dir()/scattering`` when ``cache``.
    """
    x = _check_images(images)
    if n_components is not None:
        n_components = check_int("n_components", n_components, minimum=1)
    params = {"J": J, "L": L, "size": size, "n_components": n_components, "version": 1}
    path: Path | None = None
    if cache:
        path = cache_dir() / "scattering" / f"{_cache_key(x, params)}.npy"
        if path.is_file():
            return np.load(path)
    S = normalize_channels(
        scattering_transform(x, J=J, L=L, size=size, batch_size=batch_size, progress=progress)
    )
    F = S.reshape(len(S), -1)
    if n_components is not None:
        if n_components > min(F.shape):
            raise ValueError(
                f"n_components must be <= min(N, {F.shape[1]}) = {min(F.shape)}, got {n_components}"
            )
        F = UncenteredPCA(n_components).fit_transform(F)
    norms = np.linalg.norm(F, axis=1, keepdims=True)
    F = (F / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{time.time_ns()}.tmp.npy")
        np.save(tmp, F)
        tmp.replace(path)
    return F


def fashion_mnist_scattering(
    root: str | None = None, n_components: int = 500, *, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 Fashion-MNIST images (train then test) as scattering features, and their labels."""
    from structlearn.data.images import load_fashion_mnist

    ds = load_fashion_mnist(root)
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    return scattering_features(x, n_components, progress=progress), y
