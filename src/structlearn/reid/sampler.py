"""P×K identity sampling for contrastive ReID training (SpCL's ``RandomMultipleGallerySampler`` logic,
spec segmentation_reid.md §2.2 step 5), vectorised over the whole epoch.

Per pseudo-identity with at least two images: a random anchor plus K − 1 more images, those from a
camera other than the anchor's first (in random order), then same-camera ones; identities with fewer
than K images repeat their members cyclically. Singleton identities contribute only their anchor.
Identities appear in random order; a data loader with batch size P·K then sees P identities per batch
(up to the singletons interleaved between them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlearn.utils.validation import check_int


def pk_epoch(labels: Any, cams: Any, k: int = 4, *, rng: np.random.Generator) -> np.ndarray:
    """Indices of one epoch: K per identity (1 per singleton), identities in random order."""
    labels = np.asarray(labels, dtype=np.int64)
    cams = np.asarray(cams, dtype=np.int64)
    if labels.ndim != 1 or cams.shape != labels.shape:
        raise ValueError(f"labels {labels.shape} and cams {cams.shape} must be 1-D of one length")
    k = check_int("k", k, minimum=1)
    keep = labels >= 0  # dropped outliers (Cluster-Contrast) are never sampled
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ValueError("no sample to draw: every label is -1")
    g = labels[idx]
    r = rng.random(idx.size)
    order = np.lexsort((r, g))  # grouped by identity, random within
    idx, g = idx[order], g[order]
    first = np.r_[True, g[1:] != g[:-1]]
    start = np.flatnonzero(first)
    size = np.diff(np.r_[start, g.size])
    grp = np.cumsum(first) - 1
    anchor_cam = cams[idx[start]][grp]
    is_anchor = np.zeros(g.size, dtype=bool)
    is_anchor[start] = True
    same_cam = cams[idx] == anchor_cam
    # Anchor first, then other cameras, then the anchor's camera; random order kept within each.
    order2 = np.lexsort((r[order], same_cam, ~is_anchor, grp))
    idx, grp = idx[order2], grp[order2]
    take = np.where(size == 1, 1, k)  # per identity
    # Position j of identity q takes member (j mod size_q): cyclic repetition when size_q < K.
    rep_grp = np.repeat(np.arange(start.size), take)
    j = np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take)
    chosen = idx[start[rep_grp] + j % size[rep_grp]]
    # Identities in random order, each identity's block kept contiguous.
    perm = rng.permutation(start.size)
    pos = np.argsort(np.repeat(np.argsort(perm), take), kind="stable")
    return chosen[pos]
