"""DigitMosaic-Seg and the user .npy loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from structlearn.data.segmentation import (
    check_segmentation,
    load_segmentation_folder,
    load_segmentation_npy,
    make_digit_mosaic,
)


def test_digit_mosaic_shapes_labels_and_determinism() -> None:
    a = make_digit_mosaic(n_train=20, n_val=6, size=32, seed=3)
    b = make_digit_mosaic(n_train=20, n_val=6, size=32, seed=3)
    c = make_digit_mosaic(n_train=20, n_val=6, size=32, seed=4)
    assert a.x_train.shape == (20, 3, 32, 32) and a.y_train.shape == (20, 32, 32) and a.x_val.shape[0] == 6
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_train, c.y_train)
    labels = set(np.unique(np.concatenate([a.y_train.ravel(), a.y_val.ravel()])))
    assert labels <= set(range(11)) | {255} and 0 in labels and 255 in labels and len(labels - {0, 255}) >= 3
    assert a.x_train.min() >= 0.0 and a.x_train.max() <= 1.0


def test_digit_mosaic_options_keep_the_default_stream() -> None:
    """digits / ink / align (benchmark settings, issue 13): defaults = the original set; ``ink`` draws the
    same random numbers, so only glyph colours change; ``digits`` relabels 1 + index; ``align`` puts
    each glyph in a grid cell."""
    base = make_digit_mosaic(n_train=30, n_val=4, seed=5)
    same = make_digit_mosaic(n_train=30, n_val=4, seed=5, digits=tuple(range(10)), ink=None, align=1)
    np.testing.assert_array_equal(base.x_train, same.x_train)
    np.testing.assert_array_equal(base.y_train, same.y_train)
    white = make_digit_mosaic(n_train=30, n_val=4, seed=5, ink=1.0)
    np.testing.assert_array_equal(white.y_train, base.y_train)
    fg, bg = white.y_train > 0, white.y_train == 0
    fg &= white.y_train != 255
    assert white.x_train.mean(1)[fg].mean() > white.x_train.mean(1)[bg].mean() + 0.2
    assert not np.array_equal(white.x_train, base.x_train)
    few = make_digit_mosaic(n_train=40, n_val=4, seed=5, digits=(7, 0))
    assert few.n_classes == 3 and set(np.unique(few.y_train)) == {0, 1, 2, 255}
    cells = make_digit_mosaic(n_train=20, n_val=2, seed=5, max_glyphs=1, align=16, ignore_edges=False)
    for y in cells.y_train:  # one glyph: its pixels lie inside one 16×16 cell
        r, c = np.nonzero(y)
        assert r.min() // 16 == r.max() // 16 and c.min() // 16 == c.max() // 16


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"digits": ()}, "digits"),
        ({"digits": (1, 1)}, "digits"),
        ({"digits": (3, 10)}, "digits"),
        ({"ink": 1.5}, "ink"),
        ({"ink": True}, "ink"),
        ({"align": 0}, "align"),
    ],
)
def test_digit_mosaic_option_errors(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        make_digit_mosaic(n_train=2, n_val=2, **kw)  # type: ignore[arg-type]


def test_ignore_edges_off() -> None:
    d = make_digit_mosaic(n_train=10, n_val=2, ignore_edges=False)
    assert 255 not in d.y_train


def test_npy_loader_and_bad_input(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((10, 3, 8, 8)).astype(np.float32)
    y = np.zeros((10, 8, 8), dtype=np.int64)
    y[:, :2] = 255
    y[:, 4:] = 2
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    d = load_segmentation_npy(
        tmp_path / "x.npy", tmp_path / "y.npy", n_classes=3, val_fraction=0.3, patch_size=4
    )
    assert d.x_train.shape == (7, 3, 8, 8) and d.y_val.shape == (3, 8, 8)
    with pytest.raises(ValueError, match="not divisible by the patch"):
        load_segmentation_npy(tmp_path / "x.npy", tmp_path / "y.npy", n_classes=3, patch_size=3)
    with pytest.raises(ValueError, match=r"mask labels must be in \[0, 2\)"):
        load_segmentation_npy(tmp_path / "x.npy", tmp_path / "y.npy", n_classes=2)
    with pytest.raises(ValueError, match="no such file"):
        load_segmentation_npy(tmp_path / "nope.npy", tmp_path / "y.npy", n_classes=3)


@pytest.mark.parametrize(
    ("x", "y", "msg"),
    [
        (np.zeros((2, 3, 8, 8)), np.zeros((2, 8, 6), dtype=int), "size mismatch"),
        (np.zeros((2, 8, 8)), np.full((2, 8, 8), -1), "mask labels"),
        (np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), "integer array"),
        (np.full((1, 8, 8), np.nan), np.zeros((1, 8, 8), dtype=int), "NaN"),
    ],
)
def test_check_segmentation_errors(x: np.ndarray, y: np.ndarray, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        check_segmentation(x, y, 3)


def _write_pair(folder: Path, stem: str, rgb: np.ndarray, mask: np.ndarray, mode: str = "L") -> None:
    from PIL import Image

    (folder / "img").mkdir(exist_ok=True)
    (folder / "msk").mkdir(exist_ok=True)
    Image.fromarray(rgb).save(folder / "img" / f"{stem}.png")
    m = Image.fromarray(mask.astype(np.uint8), mode="L")
    if mode == "P":
        m = m.convert("P")
        m.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])  # colours unrelated to the ids
    elif mode == "RGB":
        m = m.convert("RGB")
    m.save(folder / "msk" / f"{stem}.png")


def test_folder_loader_pairs_files_and_reads_palette_indices(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgbs, masks = {}, {}
    for i, mode in enumerate(["L", "P", "L", "P", "L"]):
        rgbs[i] = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
        masks[i] = rng.choice([0, 1, 2, 255], (8, 12))
        _write_pair(tmp_path, f"im{i}", rgbs[i], masks[i], mode)
    ds = load_segmentation_folder(tmp_path / "img", tmp_path / "msk", n_classes=3, val_fraction=0.4, seed=1)
    assert ds.x_train.shape == (3, 3, 8, 12) and ds.x_val.shape == (2, 3, 8, 12)
    assert ds.y_train.dtype == np.int64 and set(np.unique(ds.y_train)) <= {0, 1, 2, 255}
    # Every image arrives with its own mask, in [0, 1], channels first.
    got = {
        tuple(x.ravel()[:6]): y
        for x, y in zip(
            np.concatenate([ds.x_train, ds.x_val]), np.concatenate([ds.y_train, ds.y_val]), strict=True
        )
    }
    for i in range(5):
        key = tuple((rgbs[i].transpose(2, 0, 1) / 255.0).astype(np.float32).ravel()[:6])
        np.testing.assert_array_equal(got[key], masks[i])
    gray = load_segmentation_folder(tmp_path / "img", tmp_path / "msk", 3, grayscale=True)
    assert gray.x_train.shape[1] == 1


@pytest.mark.parametrize(
    "case, msg",
    [
        ("unpaired", "without a partner"),
        ("rgb_mask", "single-channel"),
        ("mismatch", "size mismatch"),
        ("mixed", "mixed sizes"),
        ("label", "mask labels must be in"),
        ("empty", "no images"),
    ],
)
def test_folder_loader_bad_input(tmp_path: Path, case: str, msg: str) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    mask = rng.choice([0, 1], (8, 8))
    if case != "empty":
        _write_pair(tmp_path, "a", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), mask)
        _write_pair(tmp_path, "b", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), mask)
    else:
        (tmp_path / "img").mkdir()
        (tmp_path / "msk").mkdir()
    if case == "unpaired":
        (tmp_path / "msk" / "b.png").unlink()
    elif case == "rgb_mask":
        _write_pair(tmp_path, "b", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), mask, mode="RGB")
    elif case == "mismatch":
        Image.fromarray(np.zeros((8, 6), np.uint8)).save(tmp_path / "msk" / "b.png")
    elif case == "mixed":
        _write_pair(
            tmp_path, "b", rng.integers(0, 256, (16, 8, 3), dtype=np.uint8), rng.choice([0, 1], (16, 8))
        )
    elif case == "label":
        _write_pair(tmp_path, "b", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), np.full((8, 8), 7))
    with pytest.raises(ValueError, match=msg):
        load_segmentation_folder(tmp_path / "img", tmp_path / "msk", n_classes=2)
