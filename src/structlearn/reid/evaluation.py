"""Retrieval metrics of person re-identification: mAP, CMC rank-k and mINP.

Conventions of open-reid / SpCL / Cluster-Contrast / torchreid / fast-reid (spec segmentation_reid.md
§6.1–6.2):

- distance = squared Euclidean between L2-normalised features (the same ranking as cosine);
- for each query, gallery entries with the same identity **and** the same camera are removed (they are
  trivially easy); in the clothes-change protocol (``q_clothes``/``g_clothes`` given) entries with the
  same identity and the same clothes are removed too, so every positive is a cross-clothes match;
- queries left with no valid positive are skipped (their number is reported);
- AP = mean over the valid positives of precision at their rank (torchreid's Σ_k P@k·rel_k / #rel);
  CMC(k) = fraction of queries whose first valid positive is at rank ≤ k; INP = #positives / rank of
  the hardest (last) positive (Ye et al., TPAMI 2021, arXiv 2001.04193), mINP its mean.

Vectorised over blocks of queries: a block's distances, the argsort of each row and cumulative counts of
valid entries and of positives; memory O(block × gallery). :func:`evaluate_model` applies them to a
model's features of a query/gallery split (both protocols where identities change clothes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from structlearn.data.reid import ReIDSplit
from structlearn.reid.backbone import ReIDNet
from structlearn.utils.validation import check_features, check_int

QUERY_BLOCK = 256


@dataclass(frozen=True)
class RetrievalResult:
    """mAP, CMC at ranks 1…max_rank, mINP (fractions in [0, 1]) and the number of evaluated queries."""

    mAP: float  # noqa: N815 - the field's name for it
    cmc: np.ndarray
    mINP: float  # noqa: N815
    n_valid_queries: int
    n_skipped_queries: int

    def summary(self, ranks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
        out = {"mAP": self.mAP, "mINP": self.mINP}
        for r in ranks:
            if r <= len(self.cmc):
                out[f"R{r}"] = float(self.cmc[r - 1])
        return out


def _ids(name: str, values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def l2_normalize(features: Any, name: str) -> np.ndarray:
    X = check_features(features, name=name, reject_constant=False, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{name} has all-zero rows")
    return X / norms


def evaluate_retrieval(
    query_features: Any,
    gallery_features: Any,
    q_pids: Any,
    g_pids: Any,
    q_cams: Any,
    g_cams: Any,
    *,
    q_clothes: Any = None,
    g_clothes: Any = None,
    max_rank: int = 50,
    block: int = QUERY_BLOCK,
) -> RetrievalResult:
    """mAP / CMC / mINP of ranking ``gallery_features`` for each row of ``query_features``."""
    Q = l2_normalize(query_features, "query_features")
    G = l2_normalize(gallery_features, "gallery_features")
    if Q.shape[1] != G.shape[1]:
        raise ValueError(f"query features have {Q.shape[1]} dimensions, gallery features {G.shape[1]}")
    nq, ng = Q.shape[0], G.shape[0]
    qp, gp = _ids("q_pids", q_pids, nq), _ids("g_pids", g_pids, ng)
    qc, gc = _ids("q_cams", q_cams, nq), _ids("g_cams", g_cams, ng)
    clothes = q_clothes is not None or g_clothes is not None
    if clothes:
        if q_clothes is None or g_clothes is None:
            raise ValueError("the clothes-change protocol needs both q_clothes and g_clothes")
        qo, go = _ids("q_clothes", q_clothes, nq), _ids("g_clothes", g_clothes, ng)
    max_rank = check_int("max_rank", max_rank, minimum=1)
    block = check_int("block", block, minimum=1)
    Gt = torch.from_numpy(G)
    ap_sum = inp_sum = 0.0
    first_hits: list[np.ndarray] = []
    n_valid = 0
    for s in range(0, nq, block):
        e = min(s + block, nq)
        dist = (2.0 - 2.0 * (torch.from_numpy(Q[s:e]) @ Gt.T)).numpy()
        order = np.argsort(dist, axis=1, kind="stable")
        gpo, gco = gp[order], gc[order]
        same_id = gpo == qp[s:e, None]
        invalid = same_id & (gco == qc[s:e, None])
        if clothes:
            invalid |= same_id & (go[order] == qo[s:e, None])
        valid = ~invalid
        pos = same_id & valid
        n_pos = pos.sum(axis=1)
        ok = n_pos > 0
        if not ok.any():
            continue
        valid, pos, n_pos = valid[ok], pos[ok], n_pos[ok]
        rank = np.cumsum(valid, axis=1)  # 1-based rank among valid entries at each position
        hits = np.cumsum(pos, axis=1)
        ap_sum += float((np.where(pos, hits / np.maximum(rank, 1), 0.0).sum(axis=1) / n_pos).sum())
        first = np.where(pos, rank, np.iinfo(np.int64).max).min(axis=1)
        last = np.where(pos, rank, 0).max(axis=1)
        inp_sum += float((n_pos / last).sum())
        first_hits.append(first)
        n_valid += int(ok.sum())
    if n_valid == 0:
        raise ValueError("no query has a valid positive in the gallery (same identity, other camera)")
    first_all = np.concatenate(first_hits)
    cmc = (first_all[:, None] <= np.arange(1, max_rank + 1)[None, :]).mean(axis=0)
    return RetrievalResult(
        mAP=ap_sum / n_valid,
        cmc=cmc,
        mINP=inp_sum / n_valid,
        n_valid_queries=n_valid,
        n_skipped_queries=nq - n_valid,
    )


def evaluate_model(net: ReIDNet, query: ReIDSplit, gallery: ReIDSplit) -> dict[str, float]:
    """mAP / R1 / R5 / R10 / mINP of a model's L2-normalised BN features (same-id-same-camera filtered);
    where identities change clothes, also the clothes-change protocol (``cc_*``: same-id-same-clothes
    gallery entries removed too, spec §6.2)."""
    q = net.embed(torch.from_numpy(query.images)).numpy()
    gl = net.embed(torch.from_numpy(gallery.images)).numpy()
    res = evaluate_retrieval(q, gl, query.pids, gallery.pids, query.cams, gallery.cams, max_rank=10)
    out = res.summary()
    if not np.array_equal(gallery.clothes, gallery.pids):
        try:
            cc = evaluate_retrieval(
                q, gl, query.pids, gallery.pids, query.cams, gallery.cams,
                q_clothes=query.clothes, g_clothes=gallery.clothes, max_rank=10,
            )  # fmt: skip
        except ValueError:  # no query has a cross-clothes positive in this gallery
            return out
        out.update({f"cc_{k}": v for k, v in cc.summary().items()})
    return out
