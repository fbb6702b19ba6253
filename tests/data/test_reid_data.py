from pathlib import Path

import numpy as np
import pytest

from structlearn.data.reid import load_reid_folder, make_reid_dataset, parse_market_name


def test_procedural_splits_are_disjoint_and_deterministic() -> None:
    a = make_reid_dataset(20, 6, 6, n_cameras=4, seed=3)
    b = make_reid_dataset(20, 6, 6, n_cameras=4, seed=3)
    assert np.array_equal(a.train.images, b.train.images)
    assert a.train.images.shape == (120, 3, 32, 16) and a.train.images.dtype == np.float32
    assert set(a.train.pids).isdisjoint(a.query.pids)
    assert set(a.query.pids) == set(a.gallery.pids)
    assert len(a.query) == 12 and len(a.gallery) == 24
    # every query has a positive in another camera of the gallery
    for p, c in zip(a.query.pids, a.query.cams, strict=True):
        assert np.any((a.gallery.pids == p) & (a.gallery.cams != c))
    assert a.train.images.min() >= 0.0 and a.train.images.max() <= 1.0


def test_shortcut_zero_means_grey_outfits() -> None:
    ds = make_reid_dataset(6, 2, 4, shortcut=0.0, camera_cast=0.0, seed=0)
    img = ds.train.images
    # Without colour and camera casts, channels differ only by the pixel noise.
    assert np.abs(img[:, 0] - img[:, 1]).mean() < 0.065  # noise 0.05 per channel: E|n1 − n2| ≈ 0.056
    coloured = make_reid_dataset(6, 2, 4, shortcut=1.0, camera_cast=0.0, seed=0).train.images
    assert (
        np.abs(coloured[:, 0] - coloured[:, 1]).mean() > 1.5 * np.abs(img[:, 0] - img[:, 1]).mean()
    )  # background pixels dilute it


def test_clothes_change_variant_records_outfits() -> None:
    ds = make_reid_dataset(10, 4, 6, outfits_per_id=3, seed=1)
    per_id = {p: len(set(ds.train.clothes[ds.train.pids == p])) for p in set(ds.train.pids)}
    assert max(per_id.values()) > 1


def test_pose_jitter_controls_how_much_the_silhouette_says_about_identity() -> None:
    """At 0 every image of an identity has one silhouette, whatever its outfit; at the default the
    silhouettes of one identity differ; the knob scales the draws, so 1 is the default data exactly."""
    kw = {"n_train_ids": 8, "n_test_ids": 2, "images_per_id": 6, "outfits_per_id": 3, "seed": 2}
    fixed = make_reid_dataset(pose_jitter=0.0, **kw).train
    default = make_reid_dataset(**kw).train
    assert np.array_equal(make_reid_dataset(pose_jitter=1.0, **kw).train.images, default.images)
    for data, one_shape in ((fixed, True), (default, False)):
        sil = data.silhouettes.reshape(len(data.pids), -1)
        same = [np.all(sil[data.pids == p] == sil[data.pids == p][0]) for p in np.unique(data.pids)]
        assert all(same) is one_shape
    assert len(np.unique(fixed.clothes)) > len(np.unique(fixed.pids))  # outfits still change
    with pytest.raises(ValueError, match="pose_jitter"):
        make_reid_dataset(pose_jitter=-0.5)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="shortcut"):
        make_reid_dataset(shortcut=1.5)
    with pytest.raises(ValueError, match="images_per_id"):
        make_reid_dataset(images_per_id=2)


def test_market_folder_loader(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    names = ["0002_c1s1_000451_03.jpg", "0002_c3s1_000551_01.jpg", "0007_c2s1_000101_01.png", "-1_c1s1_0.jpg",
             "readme.txt", "notmarket.jpg"]  # fmt: skip
    for n in names:
        p = tmp_path / n
        if p.suffix == ".txt":
            p.write_text("x")
        else:
            Image.fromarray(rng.integers(0, 255, (40, 20, 3), dtype=np.uint8)).save(p)
    split = load_reid_folder(tmp_path, size=(32, 16))
    assert split.images.shape == (3, 3, 32, 16)
    assert split.pids.tolist() == [2, 2, 7] and split.cams.tolist() == [1, 3, 2]
    assert parse_market_name("0002_c1s1_000451_03.jpg") == (2, 1) and parse_market_name("x.jpg") is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="Market-1501 naming"):
        load_reid_folder(empty)
    with pytest.raises(ValueError, match="does not exist"):
        load_reid_folder(tmp_path / "nope")
    (tmp_path / "0003_c1_broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        load_reid_folder(tmp_path)


def test_market_folder_loader_reads_person_masks(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    img_dir, mask_dir = tmp_path / "img", tmp_path / "mask"
    img_dir.mkdir()
    mask_dir.mkdir()
    for i, name in enumerate(["0002_c1s1_000451_03", "0007_c2s1_000101_01"]):
        Image.fromarray(rng.integers(0, 255, (40, 20, 3), dtype=np.uint8)).save(img_dir / f"{name}.jpg")
        m = np.zeros((40, 20), np.uint8)
        m[10:30, 5 + i : 15] = 7  # any non-zero value is the person
        Image.fromarray(m).save(mask_dir / f"{name}.png")
    split = load_reid_folder(img_dir, size=(40, 20), masks=mask_dir)
    assert split.silhouettes is not None and split.silhouettes.shape == (2, 1, 40, 20)
    assert set(np.unique(split.silhouettes)) == {0.0, 1.0}
    assert split.silhouettes[0, 0, 10:30, 5:15].all() and split.silhouettes[1, 0, :, 5].sum() == 0
    assert load_reid_folder(img_dir, size=(40, 20)).silhouettes is None
    (mask_dir / "0007_c2s1_000101_01.png").unlink()
    with pytest.raises(ValueError, match=r"no mask 0007_c2s1_000101_01\.png"):
        load_reid_folder(img_dir, masks=mask_dir)
    with pytest.raises(ValueError, match="does not exist"):
        load_reid_folder(img_dir, masks=tmp_path / "nope")


def test_palette_size_shares_colours_across_all_identities() -> None:
    from structlearn.data.reid import _identities

    rng = np.random.default_rng(0)
    shared = _identities(60, 1.0, 1, rng, palette_size=2)["colours"].reshape(60, -1)
    assert len(np.unique(shared, axis=0)) <= 2
    default = _identities(60, 1.0, 1, np.random.default_rng(0))["colours"].reshape(60, -1)
    assert len(np.unique(default, axis=0)) > 10  # n // 3 = 20 entries drawn with replacement
    a = make_reid_dataset(n_train_ids=6, n_test_ids=3, seed=1)
    b = make_reid_dataset(n_train_ids=6, n_test_ids=3, seed=1, palette_size=None)
    np.testing.assert_array_equal(a.train.images, b.train.images)
    with pytest.raises(ValueError, match="palette_size"):
        make_reid_dataset(n_train_ids=6, n_test_ids=3, palette_size=0)


def _gray(images: np.ndarray) -> np.ndarray:
    return np.einsum("nchw,c->nhw", images, np.array([0.299, 0.587, 0.114]))


@pytest.mark.parametrize("shortcut", [0.0, 1.0])
def test_luma_preserving_cast_is_invisible_to_the_grayscale_view(shortcut: float) -> None:
    # The cast draw and the pixel noise come from the same generator states whatever the strength, so the
    # images differ only through the cast (and the clipping of noisy pixels at 0 and 1).
    kw = {"n_train_ids": 12, "n_test_ids": 2, "images_per_id": 6, "shortcut": shortcut, "seed": 4}
    plain = make_reid_dataset(camera_cast=0.0, **kw).train
    hue = make_reid_dataset(camera_cast=1.0, cast_preserves_luma=True, **kw).train
    full = make_reid_dataset(camera_cast=1.0, **kw).train
    d_hue = np.abs(_gray(hue.images) - _gray(plain.images)).mean()
    d_full = np.abs(_gray(full.images) - _gray(plain.images)).mean()
    assert d_full > 0.03 and d_hue < 0.3 * d_full  # the default cast dims / brightens whole cameras
    # ... while the colours still change with the camera (background pixels: 0.15 grey without a cast).
    bg = hue.silhouettes[:, 0] == 0
    rgb = np.stack([hue.images[:, c][bg] for c in range(3)])
    assert np.abs(rgb - rgb.mean(0)).mean() > 0.02
    assert make_reid_dataset(camera_cast=1.0, cast_preserves_luma=True, **kw).info["cast_preserves_luma"]


def test_luma_preserving_render_keeps_each_pixels_luma_exactly() -> None:
    from structlearn.data.reid import _identities, render_pedestrians

    ids = _identities(5, 1.0, 1, np.random.default_rng(0))
    who, outfit = np.arange(5), np.zeros(5, dtype=np.int64)
    cast = 1.0 + 0.5 * np.random.default_rng(1).uniform(-1, 1, (5, 3))
    args = (ids, who, outfit)
    plain, _ = render_pedestrians(*args, np.ones((5, 3)), np.random.default_rng(2), noise=0.0)
    hue, _ = render_pedestrians(*args, cast, np.random.default_rng(2), noise=0.0, preserve_luma=True)
    inside = (hue < 1.0).all(1)  # pixels clipped at 1 lose luma by design
    assert inside.mean() > 0.9
    assert np.abs(_gray(hue) - _gray(plain))[inside].max() < 1e-5
    assert np.abs(hue - plain).max() > 0.1


def test_cast_preserves_luma_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="cast_preserves_luma"):
        make_reid_dataset(cast_preserves_luma="yes")
