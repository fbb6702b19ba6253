"""Re-identification data: procedural pedestrians (no download) and a Market-1501-style folder loader.

Procedural pedestrians (spec segmentation_reid.md §9.2 (a); our design). Each identity has
colour-invariant cues — body shape (head size, shoulder width, torso and leg lengths, leg gap) and a torso
texture (stripe frequency and orientation, which belongs to the outfit when an identity has several) —
and an outfit (torso and leg colours). The **colour
shortcut**: outfits are drawn from a small palette shared by groups of about three identities, so colour
alone confuses identities; per-camera colour casts change every identity's colours between cameras.
The cast of camera k multiplies channel c of every pixel (person and background) by
1 + ``camera_cast`` · u_kc, u_kc ~ U(−1, 1): it changes brightness as well as hue, so the grayscale view
is not invariant to it (at ``camera_cast`` = 1 a channel factor can reach 0). ``cast_preserves_luma``
rescales each cast pixel back to its ITU-R 601 luma (a hue-only camera change: the grayscale view is
invariant up to clipping), the premise of CACL's colour-invariant branch.
``shortcut`` ∈ [0, 1] scales the colour saturation against the luminance pattern that carries the
identity: at 0 every outfit is grey (no shortcut), at 1 colours dominate pixel differences. Every image
jitters position, scale, the texture phase and adds pixel noise. Images are float32 RGB (N, 3, H, W)
in [0, 1], H × W = 32 × 16 by default.

Splits (``make_reid_dataset``): ``train`` identities with ``images_per_id`` images spread over
``n_cameras`` cameras; disjoint ``test`` identities whose images are split into a query set (one image
per identity in each of two cameras) and the gallery (the rest). Labels: ``pids``, ``cams`` and, for
the clothes-change variant (``outfits_per_id`` > 1: outfits change colour and texture, the body shape
stays), ``clothes``. Every image comes with its exact binary silhouette (``silhouettes``), standing in
for a human parser's mask (noise-free, which flatters silhouette-based methods).

Folder loader (``load_reid_folder``): Market-1501 naming ``<pid>_c<cam>…`` (e.g. ``0002_c1s1_000451_03.jpg``);
pid −1 (junk) dropped, pid 0 (distractors) kept in the gallery, as open-reid does. Images are resized
to one size with bilinear interpolation (Pillow).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from structlearn.utils.validation import check_float, check_int

MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, the weights of reid.backbone.to_gray


@dataclass(frozen=True)
class ReIDSplit:
    """Images (N, 3, H, W) float32 in [0, 1] with identity, camera and clothes labels (N,) int64."""

    images: np.ndarray
    pids: np.ndarray
    cams: np.ndarray
    clothes: np.ndarray
    silhouettes: np.ndarray | None = None  # (N, 1, H, W) {0, 1} person masks, where known

    def __len__(self) -> int:
        return len(self.pids)


@dataclass(frozen=True)
class ReIDDataset:
    train: ReIDSplit
    query: ReIDSplit
    gallery: ReIDSplit
    info: dict[str, Any] = field(default_factory=dict)


def _identities(
    n: int, shortcut: float, outfits: int, rng: np.random.Generator, palette_size: int | None = None
) -> dict[str, np.ndarray]:
    """Identity parameters; outfit colours from a palette shared by groups of ~3 identities, or by all
    identities when ``palette_size`` is given (then colour says little about identity)."""
    n_palette = max(1, n // 3) if palette_size is None else palette_size
    palette = rng.uniform(0.0, 1.0, size=(n_palette, 2, 3))  # torso and leg RGB per palette entry
    choice = rng.integers(0, n_palette, size=(n, outfits))
    colours = palette[choice]  # (n, outfits, 2, 3)
    grey = colours.mean(axis=-1, keepdims=True)
    colours = grey + shortcut * (colours - grey)  # shortcut 0: grey, 1: full colour
    return {
        "head": rng.uniform(0.10, 0.17, n),  # head radius (fraction of height)
        "shoulder": rng.uniform(0.55, 0.95, n),  # torso width (fraction of width)
        "torso": rng.uniform(0.28, 0.42, n),  # torso length
        "gap": rng.uniform(0.05, 0.30, n),  # leg gap (fraction of width)
        "freq": rng.uniform(1.5, 5.0, (n, outfits)),  # stripes per torso: part of the outfit
        "angle": rng.uniform(0.0, np.pi, (n, outfits)),  # stripe orientation
        "lum": rng.uniform(0.35, 0.75, n),  # base luminance of the outfit
        "colours": colours,
    }


def render_pedestrians(
    ids: dict[str, np.ndarray],
    who: np.ndarray,
    outfit: np.ndarray,
    cam_cast: np.ndarray,
    rng: np.random.Generator,
    size: tuple[int, int] = (32, 16),
    noise: float = 0.05,
    preserve_luma: bool = False,
    pose_jitter: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one image per entry of ``who`` (identity index) with its ``outfit`` and camera cast (N, 3);
    returns the images (N, 3, H, W) and the exact silhouettes (N, 1, H, W). ``preserve_luma``: each
    pixel keeps its luma under the cast (only its hue changes). ``pose_jitter`` scales the per-image
    placement, scale and pose draws (1: the default spread; 0: one fixed silhouette per identity)."""
    H, W = size
    n = who.size
    y = (np.arange(H)[None, :, None] + 0.5) / H  # (1, H, 1)
    x = (np.arange(W)[None, None, :] + 0.5) / W  # (1, 1, W)
    # The same draws at every pose_jitter (scaled, not re-drawn): a sweep changes only the spread.
    dy = pose_jitter * rng.normal(0, 0.03, n)[:, None, None]
    dx = pose_jitter * rng.normal(0, 0.05, n)[:, None, None]
    s = 1.0 + pose_jitter * (rng.uniform(0.92, 1.08, n)[:, None, None] - 1.0)
    yy, xx = (y - 0.5 - dy) / s + 0.5, (x - 0.5 - dx) / s + 0.5

    def p(name: str) -> np.ndarray:
        v = ids[name][who]
        return (v[np.arange(n), outfit] if v.ndim == 2 else v)[:, None, None]

    # Per-image pose: shoulder and stride jitter.
    pose = pose_jitter * rng.normal(0, 0.03, (2, n))[:, :, None, None]

    head_r = p("head")
    head_cy = 0.05 + head_r
    head = ((yy - head_cy) ** 2 * 4 + (xx - 0.5) ** 2) <= head_r**2
    torso_top = head_cy + head_r
    torso_bot = torso_top + p("torso")
    torso = (yy >= torso_top) & (yy < torso_bot) & (np.abs(xx - 0.5) <= p("shoulder") / 2 + pose[0])
    gap = np.maximum(p("gap") + pose[1], 0.0)
    legs = (yy >= torso_bot) & (yy < 0.97) & (np.abs(xx - 0.5) <= 0.3) & (np.abs(xx - 0.5) >= gap / 2)
    ang = p("angle")
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    stripes = 0.5 + 0.5 * np.sin(
        2 * np.pi * p("freq") * ((yy - torso_top) * np.cos(ang) + xx * np.sin(ang)) + phase
    )
    lum = p("lum")
    cols = ids["colours"][who, outfit]  # (n, 2, 3)
    img = np.full((n, 3, H, W), 0.15, dtype=np.float64)  # dark background
    # Identity cue in luminance (stripes); outfit colour multiplies it (the shortcut).
    torso_val = (0.55 + 0.45 * stripes) * lum * 1.6  # (n, H, W)
    img = np.where(torso[:, None], torso_val[:, None] * cols[:, 0, :, None, None], img)
    img = np.where(legs[:, None], (0.7 * lum * 1.4)[:, None] * cols[:, 1, :, None, None], img)
    img = np.where(head[:, None], 0.8, img)
    cast = img * cam_cast[:, :, None, None]
    if preserve_luma:  # rescale to the uncast luma: the grayscale view cannot see the camera
        luma, luma_cast = (np.einsum("nchw,c->nhw", a, LUMA)[:, None] for a in (img, cast))
        cast = cast * (luma / np.maximum(luma_cast, 1e-12))
    img = cast + rng.normal(0, noise, img.shape)
    silhouette = (head | torso | legs)[:, None].astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32), silhouette


def make_reid_dataset(
    n_train_ids: int = 150,
    n_test_ids: int = 50,
    images_per_id: int = 8,
    n_cameras: int = 6,
    shortcut: float = 0.7,
    outfits_per_id: int = 1,
    camera_cast: float = 0.25,
    size: tuple[int, int] = (32, 16),
    seed: int = 0,
    palette_size: int | None = None,
    cast_preserves_luma: bool = False,
    pose_jitter: float = 1.0,
) -> ReIDDataset:
    """Procedural pedestrians with train identities and disjoint query/gallery identities.

    ``palette_size``: None (default) draws outfit colours from n_ids // 3 palette entries, so colour narrows
    an identity down to ~3 candidates (an informative cue); a small number (e.g. 3) shares each colour among
    many identities, so colour is a trap: at a high ``shortcut`` it dominates pixel differences while
    telling identities apart no better than chance among its group (the setting CACL's claim is about).

    ``camera_cast`` ∈ [0, 1]: strength of the per-camera channel factors 1 + camera_cast · U(−1, 1) (the
    same draw for every strength at a given seed, so a sweep only scales it). ``cast_preserves_luma``:
    keep every pixel's luma (hue-only casts, invisible to the grayscale view).

    ``pose_jitter`` ∈ [0, 2] scales each image's placement, scale, shoulder and stride jitter (1: default).
    Body shape is the only identity cue that survives an outfit change, and this jitter is what hides it:
    at 0 every image of an identity has the same silhouette (a perfect body-shape cue, the limit that
    noise-free parser masks approach), so a sweep measures how a method's gain depends on that cue."""
    n_train_ids = check_int("n_train_ids", n_train_ids, minimum=2)
    n_test_ids = check_int("n_test_ids", n_test_ids, minimum=1)
    images_per_id = check_int("images_per_id", images_per_id, minimum=3)
    n_cameras = check_int("n_cameras", n_cameras, minimum=2)
    shortcut = check_float("shortcut", shortcut, nonnegative=True, maximum=1.0)
    outfits_per_id = check_int("outfits_per_id", outfits_per_id, minimum=1)
    camera_cast = check_float("camera_cast", camera_cast, nonnegative=True, maximum=1.0)
    pose_jitter = check_float("pose_jitter", pose_jitter, nonnegative=True, maximum=2.0)
    if not isinstance(cast_preserves_luma, (bool, np.bool_)):
        raise ValueError(f"cast_preserves_luma must be a bool, got {cast_preserves_luma!r}")
    H, W = (check_int("height", size[0], minimum=8), check_int("width", size[1], minimum=4))
    rng = np.random.default_rng(seed)
    n_ids = n_train_ids + n_test_ids
    if palette_size is not None:
        palette_size = check_int("palette_size", palette_size, minimum=1)
    ids = _identities(n_ids, shortcut, outfits_per_id, rng, palette_size)
    casts = 1.0 + camera_cast * rng.uniform(-1, 1, size=(n_cameras, 3))
    who = np.repeat(np.arange(n_ids), images_per_id)
    # Cameras: each identity visits cameras in a random order, cycling if it has more images.
    cam = (
        np.tile(np.arange(images_per_id), n_ids) + rng.integers(0, n_cameras, n_ids).repeat(images_per_id)
    ) % n_cameras
    outfit = rng.integers(0, outfits_per_id, who.size)
    images, sil = render_pedestrians(
        ids,
        who,
        outfit,
        casts[cam],
        rng,
        (H, W),
        preserve_luma=bool(cast_preserves_luma),
        pose_jitter=pose_jitter,
    )
    clothes = who * outfits_per_id + outfit

    def split(mask: np.ndarray) -> ReIDSplit:
        return ReIDSplit(
            images[mask], who[mask].astype(np.int64), cam[mask].astype(np.int64), clothes[mask], sil[mask]
        )

    train = split(who < n_train_ids)
    test = who >= n_train_ids
    # Query: the first image of each test identity in two different cameras (first two images).
    rank = np.tile(np.arange(images_per_id), n_ids)
    query_mask = test & (rank < 2)
    info = {
        "n_train_ids": n_train_ids,
        "n_test_ids": n_test_ids,
        "images_per_id": images_per_id,
        "n_cameras": n_cameras,
        "shortcut": shortcut,
        "outfits_per_id": outfits_per_id,
        "camera_cast": camera_cast,
        "cast_preserves_luma": bool(cast_preserves_luma),
        "pose_jitter": pose_jitter,
        "size": [H, W],
        "seed": seed,
    }
    return ReIDDataset(train, split(query_mask), split(test & ~query_mask), info)


def parse_market_name(name: str) -> tuple[int, int] | None:
    """(pid, camera) from a Market-1501 file name, or None if it does not follow the pattern."""
    m = MARKET_NAME.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def load_reid_folder(
    folder: str | os.PathLike[str],
    size: tuple[int, int] = (64, 32),
    masks: str | os.PathLike[str] | None = None,
) -> ReIDSplit:
    """Every ``<pid>_c<cam>…`` image in ``folder`` (not recursive), resized to ``size`` (H, W).

    ``masks``: a folder with one person mask per image, ``<same stem>.png`` (a human parser's or
    segmenter's output; any non-zero pixel is the person), resized nearest-neighbour → ``silhouettes``
    (N, 1, H, W) in {0, 1}, which SiCL needs. An image without its mask is an error."""
    from PIL import Image

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory" if root.exists() else f"{root} does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    parsed = [(p, parse_market_name(p.name)) for p in files]
    parsed = [(p, pc) for p, pc in parsed if pc is not None and pc[0] != -1]
    if not parsed:
        raise ValueError(f"{root} has no image named like <pid>_c<cam>... (Market-1501 naming)")
    H, W = size
    images = np.empty((len(parsed), 3, H, W), dtype=np.float32)
    for i, (p, _) in enumerate(parsed):  # decoding is per file by nature
        try:
            with Image.open(p) as im:
                arr = np.asarray(
                    im.convert("RGB").resize((W, H), Image.Resampling.BILINEAR), dtype=np.float32
                )
        except OSError as exc:
            raise ValueError(f"cannot read image {p}: {exc}") from None
        images[i] = arr.transpose(2, 0, 1) / 255.0
    pids = np.array([pc[0] for _, pc in parsed], dtype=np.int64)
    cams = np.array([pc[1] for _, pc in parsed], dtype=np.int64)
    sil = None if masks is None else _read_masks(Path(masks), [p for p, _ in parsed], size)
    return ReIDSplit(images, pids, cams, pids.copy(), sil)


def _read_masks(folder: Path, images: list[Path], size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if not folder.is_dir():
        raise ValueError(f"mask folder {folder} does not exist")
    H, W = size
    out = np.empty((len(images), 1, H, W), dtype=np.float32)
    for i, p in enumerate(images):
        f = folder / f"{p.stem}.png"
        if not f.is_file():
            raise ValueError(f"no mask {f.name} in {folder} for image {p.name}")
        try:
            with Image.open(f) as im:
                m = np.asarray(im.convert("L").resize((W, H), Image.Resampling.NEAREST))
        except OSError as exc:
            raise ValueError(f"cannot read mask {f}: {exc}") from None
        out[i, 0] = m > 0
    return out
