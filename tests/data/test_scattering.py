import numpy as np
import pytest
import torch

from structlearn.data.scattering import Scattering2D, scattering_features


def _images(n: int = 6, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g)
    return torch.nn.functional.avg_pool2d(x, 5, 1, 2)[:, 0]  # smooth, image-like


def test_shape_and_channel_count() -> None:
    S = Scattering2D((32, 32), J=3, L=8)
    out = S(_images())
    assert out.shape == (6, 217, 4, 4) and S.n_channels == 217  # 1 + JL + L²J(J−1)/2
    assert Scattering2D((16, 16), J=2, L=4)(_images(2, 16)).shape == (2, 1 + 8 + 16, 4, 4)


def test_order_zero_is_a_local_average_and_coefficients_are_stable_to_small_shifts() -> None:
    x = _images(4)
    S = Scattering2D((32, 32))
    a = S(x)
    assert torch.all(a >= -1e-6)  # order 0 of a non-negative image, moduli after
    shifted = torch.roll(x, shifts=1, dims=2)
    b = S(shifted)
    rel = float((a - b).norm() / a.norm())
    assert rel < 0.15  # J = 3 averages over 8 pixels: a 1-pixel shift changes little
    assert float((x - shifted).norm() / x.norm()) > rel  # far less than the pixels themselves


def test_matches_kymatio_filter_bank_when_installed() -> None:
    frontend = pytest.importorskip("kymatio.scattering2d.frontend.torch_frontend")
    x = _images(8)
    ours = Scattering2D((32, 32))(x)
    ref = frontend.ScatteringTorch2D(J=3, shape=(32, 32), L=8)(x)
    assert torch.allclose(ours[:, 0], ref[:, 0], rtol=1e-3, atol=1e-5)
    for sl in (slice(1, 25), slice(25, None)):
        rel = float((ours[:, sl] - ref[:, sl]).norm() / ref[:, sl].norm())
        assert rel < 0.03


def test_feature_pipeline_pads_scales_projects_normalises_and_caches(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STRUCTLEARN_CACHE", str(tmp_path))
    imgs = _images(40, 28, seed=1).numpy()
    Z = scattering_features(imgs, n_components=20, progress=False)
    assert Z.shape == (40, 20) and Z.dtype == np.float32
    assert np.allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    cached = list((tmp_path / "scattering").glob("*.npy"))
    assert len(cached) == 1
    np.testing.assert_array_equal(scattering_features(imgs, n_components=20, progress=False), Z)
    with pytest.raises(ValueError, match="NaN"):
        scattering_features(np.full((2, 28, 28), np.nan), progress=False)
    with pytest.raises(ValueError, match="multiple of"):
        Scattering2D((30, 30))


def test_default_pipeline_is_senets_resize_and_per_image_channel_norm(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STRUCTLEARN_CACHE", str(tmp_path))
    imgs = _images(5, 28, seed=2).numpy()
    Z = scattering_features(imgs, n_components=None, cache=False, progress=False).reshape(5, 217, 16)
    # SENet's feature_generation.py: every (image, channel) map has the same ∞-norm within a row.
    m = np.abs(Z).max(axis=2)
    np.testing.assert_allclose(m, m[:, :1].repeat(217, axis=1), rtol=1e-5)
    # Its images are resized to 32 × 32 (bilinear), not zero-padded.
    x32 = torch.nn.functional.interpolate(torch.from_numpy(imgs)[:, None], size=(32, 32), mode="bilinear")
    ref = Scattering2D((32, 32))(x32[:, 0]).numpy().reshape(5, 217, 16)
    ref = ref / np.abs(ref).max(axis=2, keepdims=True)
    ref = ref.reshape(5, -1) / np.linalg.norm(ref.reshape(5, -1), axis=1, keepdims=True)
    np.testing.assert_allclose(Z.reshape(5, -1), ref, atol=2e-3)
    # The former variant (zero-pad, channel max over the data set) stays available and differs.
    old = scattering_features(
        imgs, n_components=None, resize=False, channel_norm="dataset", cache=False, progress=False
    ).reshape(5, 217, 16)
    assert not np.allclose(old, Z, atol=1e-2)
    pad = np.pad(imgs, ((0, 0), (2, 2), (2, 2)))
    raw = Scattering2D((32, 32))(torch.from_numpy(pad)).numpy().reshape(5, 217, 16)
    raw = raw / np.abs(raw).max(axis=(0, 2), keepdims=True)
    raw = raw.reshape(5, -1) / np.linalg.norm(raw.reshape(5, -1), axis=1, keepdims=True)
    np.testing.assert_allclose(old.reshape(5, -1), raw, atol=1e-5)
    for bad, match in (
        ({"channel_norm": "image"}, "channel_norm"),
        ({"resize": "yes"}, "resize"),
        ({"resize": False, "size": 16}, "size"),
    ):
        with pytest.raises(ValueError, match=match):
            scattering_features(imgs, cache=False, progress=False, **bad)
