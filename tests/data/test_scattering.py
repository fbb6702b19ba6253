"""Scattering features (spec clustering.md §2.1): shape, invariances, normalisation, cache, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from structlearn.data import scattering as sc

needs_kymatio = pytest.mark.skipif(not sc.kymatio_available(), reason="kymatio not installed")


def _images(n: int = 6, size: int = 28, seed: int = 0, lo: float = 8, hi: float = 20) -> np.ndarray:
    """Smooth random blobs (centres in [lo, hi]²) on a zero background, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size), np.float32)
    for i in range(n):
        for _ in range(3):
            cy, cx = rng.uniform(lo, hi, 2)
            s = rng.uniform(1.5, 3.0)
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return np.clip(out, 0, 1)


def test_channel_count_formula():
    assert sc.n_scattering_channels(3, 8) == 217
    assert sc.n_scattering_channels(2, 8) == 1 + 16 + 64


@needs_kymatio
def test_transform_shape_and_resize():
    S = sc.scattering_transform(_images(3), progress=False)
    assert S.shape == (3, 217, 4, 4)
    assert np.isfinite(S).all()
    # Order-1/2 coefficients are averages of moduli: non-negative.
    assert (S[:, 1:] >= -1e-6).all()


@needs_kymatio
def test_translation_invariance_of_averaged_coefficients():
    """Shifting a bar by 2^J = 8 px (on a 64² canvas, away from the borders) leaves the spatially
    pooled order-1/2 coefficients unchanged (< 1 %), while rotating it by 90° changes them (> 50 %):
    invariant to translation, not to the content."""
    yy, xx = np.mgrid[:64, :64]
    bar = np.exp(-((yy - 28) ** 2 / 4.5 + (xx - 28) ** 2 / 50.0)).astype(np.float32)
    x = np.stack([bar, np.roll(bar, (8, 8), axis=(0, 1)), bar.T.copy()])
    pooled = sc.scattering_transform(x, size=64, progress=False).reshape(3, 217, -1).sum(-1)[:, 1:]
    ref = np.linalg.norm(pooled[0])
    assert np.linalg.norm(pooled[0] - pooled[1]) / ref < 0.01
    assert np.linalg.norm(pooled[0] - pooled[2]) / ref > 0.5


@needs_kymatio
def test_energy_is_roughly_conserved():
    """Σ‖S_m x‖² over orders 0–2 stays within a factor of ‖x‖² (Morlet frames are near-tight; the
    order-≥3 energy that J=3 drops is small for smooth images)."""
    x = _images(4, size=32)
    S = sc.scattering_transform(x, progress=False)
    # Subsampled by 2^J = 8 in each direction: each coefficient stands for 64 pixels.
    energy = (S.astype(np.float64) ** 2).sum(axis=(1, 2, 3)) * 64
    ratio = energy / (x.astype(np.float64) ** 2).sum(axis=(1, 2))
    assert np.all((ratio > 0.3) & (ratio < 1.5)), ratio


def test_normalize_channels_inf_norm():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(5, 7, 4, 4)).astype(np.float32)
    S[0, 3] = 0.0
    N = sc.normalize_channels(S)
    m = np.abs(N.reshape(5, 7, -1)).max(-1)
    assert np.allclose(np.delete(m.ravel(), 3), 1.0, atol=1e-6)
    assert m[0, 3] == 0.0
    # Each channel scaled by one positive number: signs and ratios kept.
    assert np.allclose(N[1, 2] * np.abs(S[1, 2]).max(), S[1, 2], atol=1e-6)


@needs_kymatio
def test_features_pipeline_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STRUCTLEARN_CACHE", str(tmp_path))
    x = _images(12)
    F = sc.scattering_features(x, n_components=8, L=2, progress=False)
    assert F.shape == (12, 8) and F.dtype == np.float32
    assert np.allclose(np.linalg.norm(F, axis=1), 1.0, atol=1e-5)
    files = list((tmp_path / "scattering").glob("*.npy"))
    assert len(files) == 1
    # Second call reads the cache (tamper with the file to prove it is read, not recomputed).
    np.save(files[0], np.zeros_like(F))
    assert np.all(sc.scattering_features(x, n_components=8, L=2, progress=False) == 0)
    # Different parameters → different key.
    F2 = sc.scattering_features(x, n_components=6, L=2, progress=False)
    assert F2.shape == (12, 6)


@needs_kymatio
def test_features_match_manual_recipe():
    x = _images(10)
    F = sc.scattering_features(x, n_components=5, L=2, cache=False, progress=False)
    S = (
        sc.normalize_channels(sc.scattering_transform(x, L=2, progress=False))
        .reshape(10, -1)
        .astype(np.float64)
    )
    evals, evecs = np.linalg.eigh(S.T @ S)
    Z = S @ evecs[:, np.argsort(evals)[::-1][:5]]
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    # Eigenvectors are defined up to sign: compare absolute values.
    assert np.allclose(np.abs(F), np.abs(Z), atol=1e-4)


@pytest.mark.parametrize(
    ("images", "kw", "msg"),
    [
        (np.zeros((3, 28)), {}, "shape"),
        (np.full((2, 28, 28), np.nan), {}, "NaN"),
        (np.zeros((2, 28, 28)), {"size": 30}, "multiple"),
    ],
)
def test_bad_input(images, kw, msg):
    with pytest.raises(ValueError, match=msg):
        sc.scattering_transform(images, progress=False, **kw)


def test_missing_kymatio_message(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("kymatio"):
            raise ImportError("no kymatio")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    assert not sc.kymatio_available()
    with pytest.raises(ImportError, match="structlearn\\[scattering\\]"):
        sc.scattering_transform(np.zeros((1, 32, 32)), progress=False)
