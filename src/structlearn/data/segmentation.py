"""Offline semantic-segmentation data: the procedural DigitMosaic-Seg set and user-data loaders
(``.npy`` arrays, or a folder of images with PNG masks).

DigitMosaic-Seg (spec segmentation_reid.md §9.1): scikit-learn's 8×8 digit glyphs, upsampled by ``scale``,
pasted with random colours at random positions on random textured RGB canvases. Classes: 0 = background,
1 + digit for each glyph (11 in all). Pixels on a glyph's soft edge (intensity between ``edge_low`` and
``edge_high``) are optionally ignored (label 255), as in datasets whose boundaries are marked void.
Train glyphs come from the digits train split and val glyphs from its test split, so no glyph is shared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from structlearn.data.images import load_digits
from structlearn.utils.validation import check_int

IGNORE_INDEX = 255


@dataclass(frozen=True)
class SegDataset:
    """Images (N, ch, H, W) float32 and integer masks (N, H, W) int64 with a fixed train/val split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def check_segmentation(
    images: np.ndarray, masks: np.ndarray, n_classes: int, patch_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise a segmentation pair → (N, ch, H, W) float32, (N, H, W) int64."""
    images, masks = np.asarray(images), np.asarray(masks)
    check_int("n_classes", n_classes, minimum=2, maximum=IGNORE_INDEX)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W) or (N, ch, H, W), got {images.shape}")
    if masks.ndim != 3 or not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"masks must be an integer array (N, H, W), got {masks.dtype} {masks.shape}")
    if masks.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"image/mask size mismatch: images {images.shape}, masks {masks.shape}")
    if not np.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    bad = (masks != IGNORE_INDEX) & ((masks < 0) | (masks >= n_classes))
    if bad.any():
        raise ValueError(f"mask labels must be in [0, {n_classes}) or {IGNORE_INDEX}; found {masks[bad][0]}")
    if patch_size is not None:
        p = check_int("patch_size", patch_size, minimum=1)
        H, W = masks.shape[1:]
        if H % p or W % p:
            raise ValueError(f"image size {H}×{W} is not divisible by the patch size {p}")
    return images.astype(np.float32, copy=False), masks.astype(np.int64, copy=False)


def load_segmentation_npy(
    images: str | os.PathLike[str],
    masks: str | os.PathLike[str],
    n_classes: int,
    val_fraction: float = 0.2,
    seed: int = 0,
    patch_size: int | None = None,
) -> SegDataset:
    """User data: ``images.npy`` (N, [ch,] H, W) and integer ``masks.npy`` (N, H, W); seeded split."""
    for path in (images, masks):
        if not Path(path).is_file():
            raise ValueError(f"no such file: {path}")
    return _split("npy", np.load(images), np.load(masks), n_classes, val_fraction, seed, patch_size)


MASK_SUFFIXES = (".png",)  # lossless: a JPEG mask would blur class ids at region borders
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _stems(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        raise ValueError(f"no such folder: {folder}")
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() in suffixes:
            if f.stem in found:
                raise ValueError(f"two files named {f.stem!r} in {folder} ({found[f.stem].name}, {f.name})")
            found[f.stem] = f
    return found


def read_mask_png(path: str | os.PathLike[str]) -> np.ndarray:
    """An integer mask from a PNG: single-channel (mode L/I/P — for a palette image the palette *indices*
    are the class ids, as in PASCAL VOC) → (H, W) int64. RGB masks are refused: colour-coded classes need
    a palette the loader cannot guess."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16", "1"):
            raise ValueError(
                f"{path}: mask PNG must hold single-channel class ids (mode L, P, I or I;16), "
                f"got mode {im.mode}"
            )
        return np.asarray(im, dtype=np.int64)


def load_segmentation_folder(
    images: str | os.PathLike[str],
    masks: str | os.PathLike[str],
    n_classes: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    patch_size: int | None = None,
    grayscale: bool = False,
) -> SegDataset:
    """User data as files: ``images/<name>.{png,jpg,…}`` with ``masks/<name>.png`` (same stem, class ids
    0…C−1 and 255 = ignore, see :func:`read_mask_png`). Images are RGB in [0, 1] (or one channel with
    ``grayscale``); all must share one size (no resizing: it would have to resample the masks too).
    Pairs are matched by file name; an image without a mask, or a mask without an image, is an error.
    ``n_classes=None`` takes the largest label other than 255, plus one (a class absent from every mask
    then shrinks C: pass it explicitly when that can happen)."""
    from PIL import Image

    imgs, msks = _stems(Path(images), IMAGE_SUFFIXES), _stems(Path(masks), MASK_SUFFIXES)
    if not imgs:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images}")
    unpaired = sorted(set(imgs) ^ set(msks))
    if unpaired:
        raise ValueError(
            f"{len(unpaired)} image(s)/mask(s) without a partner of the same name, e.g. {unpaired[0]!r}"
        )
    xs, ys = [], []
    for stem in sorted(imgs):
        with Image.open(imgs[stem]) as im:
            x = np.asarray(im.convert("L" if grayscale else "RGB"), dtype=np.float32) / 255.0
        y = read_mask_png(msks[stem])
        if x.shape[:2] != y.shape:
            raise ValueError(f"image/mask size mismatch for {stem!r}: image {x.shape[:2]}, mask {y.shape}")
        if xs and y.shape != ys[0].shape:
            raise ValueError(
                f"images of mixed sizes: {stem!r} is {y.shape}, the first is {ys[0].shape}; "
                "resize them (and their masks, nearest-neighbour) to one size first"
            )
        xs.append(x if grayscale else x.transpose(2, 0, 1))
        ys.append(y)
    y_all = np.stack(ys)
    if n_classes is None:
        labels = y_all[y_all != IGNORE_INDEX]
        n_classes = max(2, int(labels.max()) + 1 if labels.size else 2)
    return _split("folder", np.stack(xs), y_all, n_classes, val_fraction, seed, patch_size)


def _split(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    val_fraction: float,
    seed: int,
    patch_size: int | None,
) -> SegDataset:
    """Validate, then a seeded train/val split."""
    x, y = check_segmentation(x, y, n_classes, patch_size)
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    n_val = max(1, round(len(x) * val_fraction))
    if n_val >= len(x):
        raise ValueError(f"need at least 2 images for a train/val split, got {len(x)}")
    order = np.random.default_rng(seed).permutation(len(x))
    va, tr = order[:n_val], order[n_val:]
    return SegDataset(name, x[tr], y[tr], x[va], y[va], n_classes)


def _texture(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Random oriented stripes + noise, random base colour: (n, 3, size, size) in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    theta = rng.uniform(0, np.pi, (n, 1, 1))
    freq = rng.uniform(2, 8, (n, 1, 1))
    stripes = np.sin(2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy))  # (n, S, S)
    base = rng.uniform(0.2, 0.8, (n, 3, 1, 1))
    tex = base + 0.15 * stripes[:, None] + 0.05 * rng.standard_normal((n, 3, size, size))
    return tex.astype(np.float32)


def _glyph_colour(rng: np.random.Generator, ink: float | None) -> np.ndarray:
    """A uniform random RGB colour (``ink=None``), or grey level ``ink`` on all channels. The random
    colour is drawn in both cases, so ``ink`` changes nothing else in the canvas."""
    colour = rng.uniform(0, 1, (3, 1, 1)).astype(np.float32)
    return colour if ink is None else np.full((3, 1, 1), ink, dtype=np.float32)


def _mosaic(
    glyphs: np.ndarray,
    labels: np.ndarray,
    n: int,
    size: int,
    scale: int,
    max_glyphs: int,
    ignore_edges: bool,
    rng: np.random.Generator,
    ink: float | None = None,
    align: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    g = np.kron(glyphs, np.ones((scale, scale), dtype=np.float32))  # nearest-neighbour upsampling
    gs = g.shape[1]
    x = _texture(rng, n, size)
    y = np.zeros((n, size, size), dtype=np.int64)
    counts = rng.integers(1, max_glyphs + 1, n)
    for i in range(n):  # a few glyphs per canvas; later glyphs occlude earlier ones
        for _ in range(counts[i]):
            j = rng.integers(len(g))
            r, c = rng.integers(0, (size - gs) // align + 1, 2) * align  # corners on an align-px grid
            alpha = g[j]
            colour = _glyph_colour(rng, ink)
            patch = x[i, :, r : r + gs, c : c + gs]
            x[i, :, r : r + gs, c : c + gs] = (1 - alpha) * patch + alpha * colour
            region = y[i, r : r + gs, c : c + gs]
            region[alpha > 0.5] = labels[j] + 1
            if ignore_edges:
                region[(alpha > 0.1) & (alpha <= 0.5)] = IGNORE_INDEX
    return np.clip(x, 0, 1), y


def make_digit_mosaic(
    n_train: int = 2000,
    n_val: int = 300,
    size: int = 32,
    scale: int = 2,
    max_glyphs: int = 3,
    ignore_edges: bool = True,
    seed: int = 0,
    digits: tuple[int, ...] | None = None,
    ink: float | None = None,
    align: int = 1,
) -> SegDataset:
    """DigitMosaic-Seg: RGB ``size``×``size`` canvases, fixed split; 0 = background, ``1 + i`` = the i-th
    digit of ``digits`` (default all ten: 11 classes). ``digits`` keeps only those glyph categories (an
    easier task with ``1 + len(digits)`` classes); ``ink`` paints every glyph in that grey level instead of
    a random colour (shape, not colour contrast, is then the cue); ``align`` puts glyph corners on a grid of
    that many pixels (``align = 8·scale``: glyphs in fixed cells, as a tiled mosaic). The defaults reproduce
    the original set exactly."""
    check_int("n_train", n_train, minimum=1)
    check_int("n_val", n_val, minimum=1)
    check_int("scale", scale, minimum=1)
    check_int("max_glyphs", max_glyphs, minimum=1)
    check_int("size", size, minimum=8 * scale)
    check_int("align", align, minimum=1)
    keep = tuple(range(10)) if digits is None else tuple(digits)
    if (
        not keep
        or len(set(keep)) != len(keep)
        or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 0 <= k <= 9 for k in keep)
    ):
        raise ValueError(f"digits must be distinct integers in 0..9, got {digits!r}")
    if ink is not None and (
        isinstance(ink, bool) or not isinstance(ink, (int, float)) or not 0.0 <= float(ink) <= 1.0
    ):
        raise ValueError(f"ink must be None or a grey level in [0, 1], got {ink!r}")
    digits_ds = load_digits(seed=0)  # fixed glyph split, independent of ``seed``
    lut = np.full(10, -1, dtype=np.int64)
    lut[list(keep)] = np.arange(len(keep))
    sets = []
    for x, y in ((digits_ds.x_train, digits_ds.y_train), (digits_ds.x_test, digits_ds.y_test)):
        m = lut[y] >= 0
        sets.append((x[m], lut[y[m]]))
    rng_tr, rng_va = (np.random.default_rng([seed, k]) for k in (0, 1))
    geometry = (size, scale, max_glyphs, ignore_edges)
    colour = None if ink is None else float(ink)
    xtr, ytr = _mosaic(*sets[0], n_train, *geometry, rng_tr, colour, align)
    xva, yva = _mosaic(*sets[1], n_val, *geometry, rng_va, colour, align)
    return SegDataset("digit-mosaic", xtr, ytr, xva, yva, 1 + len(keep))
