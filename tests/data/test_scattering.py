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
