"""Unsupervised ReID on procedural pedestrians: CACL against SpCL-style and Cluster-Contrast (issue 14);
HCL vs MGCE-HCL under label noise (issue 15).

Writes benchmarks/results/reid/: reid.md + reid.json, gain_vs_shortcut.png, and one JSON per run in
runs/ (a re-run reuses them; ``--fresh`` ignores them).

1. Main table at the default colour-shortcut strength: SpCL-style single branch, Cluster-Contrast,
   CACL (focal γ = 2, the paper) and CACL with γ = 4 (the code), and CACL ablations (no grayscale branch,
   no inter-branch terms, no refinement): mAP / R1 / R5 / mINP and pseudo-label NMI / ARI of the last
   epoch (no model selection on the test split), mean ± std over seeds; wall time per run.
2. The paper's claim: CACL's gain over the single branch grows with the strength of the colour shortcut
   (``--shortcuts``), mAP of both at every strength; part ``trap``: the same sweep with a palette of
   ``--trap-palette`` colours shared by all identities, so colour misleads instead of informing.
   Parts ``cast`` / ``cast_luma`` (not run by default; ``--name reid_cast``): the same paired comparison
   along the per-camera colour-cast strength (``--casts``; shortcut 0.7), the colour that *changes with
   the camera* — multiplicative channel factors (they change brightness too), or hue-only casts that
   keep every pixel's luma — with the pseudo-labels' same-camera pair fraction (do they group by tint?);
   gain_vs_cast.png / gain_vs_cast_luma.png.
3. HCL vs MGCE-HCL with the selected eps and with eps + 0.1 (looser clusters, noisier positives), and
   the premise of MGCE: pseudo-positive pair precision against the number of agreeing granularities.
4. Clothes change (issue 15): RGB-only SpCL-style, Cluster-Contrast and CACL against SiCL and its
   ablations on identities with three outfits, under the standard and the clothes-change protocols;
   pseudo-label pair statistics beside NMI (NMI mostly measures the cluster sizes: the shuffled-label
   column), and a probe clustering each of SiCL's three memories every epoch (reid_cc_memories.png).
   Part ``cc_cluster_on`` (not run by default; ``--name reid_cc_cluster_on``): SiCL with its labels from
   M_mask, M_fus or M_rgb + M_mask (our extension). Part ``cc_pose`` (not run by default; ``--name
   reid_cc_pose``): the RGB-only methods, SiCL and SiCL clustering M_mask along the pose jitter
   (``--jitters``), which hides the body-shape cue that survives an outfit change (reid_cc_pose_pose.png).
5. Jaccard + DBSCAN scaling: time and peak memory of the sparse k-reciprocal distance against a dense
   implementation (N × N arrays) in the same run, N from 1k to 50k (dense only where it fits).

Data: :func:`structlearn.data.reid.make_reid_dataset` (150 train identities × 8 images, 6 cameras; 50
test identities). Seeds: data and model seeds 100, 101, 102 (disjoint from the seeds 0–9 used while
writing the method). One torch/BLAS thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.cluster import DBSCAN  # noqa: E402
from sklearn.metrics import normalized_mutual_info_score  # noqa: E402

from structlearn.data.reid import make_reid_dataset  # noqa: E402
from structlearn.reid.backbone import ReIDNetConfig  # noqa: E402
from structlearn.reid.jaccard import jaccard_distance  # noqa: E402
from structlearn.reid.pseudo_labels import select_eps  # noqa: E402
from structlearn.reid.trainer import ReIDConfig, train_reid  # noqa: E402
from structlearn.utils.harness import RunCache, log, markdown_table, mean_std, write_report  # noqa: E402
from structlearn.utils.memory import Measure  # noqa: E402
from structlearn.utils.plotting import save_figure, subplots  # noqa: E402

torch.set_num_threads(1)
RESULTS = Path(__file__).resolve().parent / "results" / "reid"
SEEDS = (100, 101, 102)
DEFAULT_SHORTCUT = 0.7
DEFAULT_CAST = 0.25  # make_reid_dataset's camera_cast, used by every part except `cast`
GRAY_ARM = "CACL, clusters gray memory"
SHARP_POWER = 16.0
ARMS: dict[str, dict[str, Any]] = {
    "SpCL-style (1 branch)": {"method": "spcl"},
    "Cluster-Contrast": {"method": "cluster-contrast"},
    "CACL (γ=2, paper)": {"method": "cacl", "focal_gamma": 2.0},
    "CACL (γ=4, code)": {"method": "cacl", "focal_gamma": 4.0},
    "CACL − gray branch": {"method": "cacl", "gray_branch": False},
    "CACL − inter-branch terms": {"method": "cacl", "inter_branch": False},
    "CACL − refinement": {"method": "cacl", "refinement": False},
    "HCL": {"method": "hcl"},
    "MGCE-HCL": {"method": "mgce-hcl"},
    "HCL, loose eps (+0.1)": {"method": "hcl", "eps_shift": 0.1},
    "MGCE-HCL, loose eps (+0.1)": {"method": "mgce-hcl", "eps_shift": 0.1},
    # Our extension: pseudo-labels from the grayscale memory M̃ instead of M (trainer's cluster_on).
    GRAY_ARM: {"method": "cacl", "focal_gamma": 2.0, "cluster_on": "gray"},
    # Why Cluster-Contrast beats CACL here: its pooling and its memory, taken apart (trainer's `memory`).
    "Cluster-Contrast, avg pooling": {"method": "cluster-contrast", "backbone": ReIDNetConfig(pooling="avg")},
    "CACL on centroid memory (ours)": {"method": "cacl", "focal_gamma": 2.0, "memory": "centroid"},
    "CACL on centroid memory − refinement (ours)": {
        "method": "cacl",
        "focal_gamma": 2.0,
        "memory": "centroid",
        "refinement": False,
    },
    "CACL on centroid memory − refinement, GeM (ours)": {
        "method": "cacl",
        "focal_gamma": 2.0,
        "memory": "centroid",
        "refinement": False,
        "backbone": ReIDNetConfig(pooling="gem"),
    },
    # Our extension: pseudo-labels from M and M̃ together (mean of the two cosines).
    "CACL, clusters both memories": {"method": "cacl", "focal_gamma": 2.0, "cluster_on": "both"},
    # HCL vs MGCE-HCL between the base and the +0.1 eps: how fast the labels degrade.
    "HCL, eps +0.025": {"method": "hcl", "eps_shift": 0.025},
    "MGCE-HCL, eps +0.025": {"method": "mgce-hcl", "eps_shift": 0.025},
    "HCL, eps +0.05": {"method": "hcl", "eps_shift": 0.05},
    "MGCE-HCL, eps +0.05": {"method": "mgce-hcl", "eps_shift": 0.05},
    # Sharper agreement weights w^16 (ReIDConfig.agreement_power; chosen on data seeds 0-2, not 100-102).
    **{
        f"MGCE-HCL w^16{'' if d == 0 else f', eps +{d}'} (ours)": {
            "method": "mgce-hcl",
            "eps_shift": d,
            "agreement_power": SHARP_POWER,
        }
        for d in (0.0, 0.025, 0.05, 0.1)
    },
}
CC_ARMS: dict[str, dict[str, Any]] = {
    "SpCL-style (RGB)": {"method": "spcl"},
    "Cluster-Contrast (RGB)": {"method": "cluster-contrast"},
    "CACL (RGB + gray)": {"method": "cacl"},
    "SiCL": {"method": "sicl"},
    "SiCL − neighbour clusters": {"method": "sicl", "allknn": 0},
    "SiCL − cross-view terms": {"method": "sicl", "inter_branch": False},
    "CACL, clusters gray memory": {"method": "cacl", "cluster_on": "gray"},
    "SiCL − refinement": {"method": "sicl", "refinement": False},
}
# SiCL's arms changed with the fidelity fixes to the official code (refinement, the silhouette's own
# augmentation draw, hm.py's reduction of the neighbour term): their records carry this revision, and a
# cached record of an older one (no "revision" field) is not reused. File names stay as they were.
CC_REVISION = {arm: 2 for arm, kw in CC_ARMS.items() if kw["method"] == "sicl"}
CC_MEMORY_ARM = "SiCL"  # the arm whose three memories are clustered each epoch (diagnostic)
# Part cc_cluster_on (not run by default): SiCL with its pseudo-labels from another memory (our extension,
# ReIDConfig.cluster_on; the official code clusters M_rgb), against SiCL and CACL of part cc.
CC_EXT_ARMS: dict[str, dict[str, Any]] = {
    "SiCL, clusters M_mask (ours)": {"method": "sicl", "cluster_on": "mask"},
    "SiCL, clusters M_fus (ours)": {"method": "sicl", "cluster_on": "fused"},
    "SiCL, clusters M_rgb + M_mask (ours)": {"method": "sicl", "cluster_on": "rgb+mask"},
}
CC_EXT_ARMS_MASK = "SiCL, clusters M_mask (ours)"
# New arms go to the end of ARMS / CC_ARMS: the cached runs' file names are their positions.
HCL_ARMS = tuple(a for a in ARMS if "HCL" in a)
MAIN_ARMS = (*list(ARMS)[:7], GRAY_ARM, *(a for a in list(ARMS)[12:] if a not in HCL_ARMS))
# (HCL arm, MGCE-HCL arm) per eps shift, for the label-noise table.
HCL_SHIFTS = {
    0.0: ("HCL", "MGCE-HCL", "MGCE-HCL w^16 (ours)"),
    0.025: ("HCL, eps +0.025", "MGCE-HCL, eps +0.025", "MGCE-HCL w^16, eps +0.025 (ours)"),
    0.05: ("HCL, eps +0.05", "MGCE-HCL, eps +0.05", "MGCE-HCL w^16, eps +0.05 (ours)"),
    0.1: ("HCL, loose eps (+0.1)", "MGCE-HCL, loose eps (+0.1)", "MGCE-HCL w^16, eps +0.1 (ours)"),
}
CC_OUTFITS = 3
ARMS_KEYS = {arm: f"arm{i}" for i, arm in enumerate(ARMS)}  # file names of the cached runs
METRICS = ("mAP", "R1", "R5", "mINP", "pseudo_nmi", "pseudo_ari")


def run_name(
    arm: str,
    shortcut: float,
    seed: int,
    epochs: int,
    outfits: int = 1,
    palette: int | None = None,
    camera_cast: float = DEFAULT_CAST,
    cast_luma: bool = False,
    pose_jitter: float = 1.0,
) -> str:
    """File name (no suffix) of a cached run. The cast and the pose jitter enter only when they differ from
    their defaults (0.25, 1), so the runs cached before those sweeps existed keep their names; a
    luma-preserving cast of 0 is no cast."""
    if outfits == 1:
        key = ARMS_KEYS[arm]
    elif arm in CC_EXT_ARMS:
        key = f"ccx{list(CC_EXT_ARMS).index(arm)}"
    else:
        key = f"cc{list(CC_ARMS).index(arm)}"
    pal = "" if palette is None else f"_p{palette}"
    luma = cast_luma and camera_cast > 0
    cast = "" if camera_cast == DEFAULT_CAST and not luma else f"_c{camera_cast}{'L' if luma else ''}"
    jit = "" if pose_jitter == 1.0 else f"_j{pose_jitter}"
    return f"{key}_s{shortcut}_o{outfits}{pal}{cast}{jit}_seed{seed}_e{epochs}"


def pair_stats(labels: np.ndarray, pids: np.ndarray, cams: np.ndarray) -> dict[str, float]:
    """Over the pairs of images that share a pseudo-label: the fraction from the same camera and the
    fraction of the same identity (pair precision). A clustering by camera tint drives the first to 1;
    true identities give the data's own same-camera rate (each identity spans several cameras)."""
    ok = labels >= 0

    def n_pairs(*keys: np.ndarray) -> float:
        _, cnt = np.unique(np.stack([k[ok] for k in keys]), axis=1, return_counts=True)
        return float((cnt * (cnt - 1) / 2).sum())

    n = n_pairs(labels)
    n_same = _pairs(pids)  # of all same-identity pairs, the share labelled together (recall)
    recall = n_pairs(labels, pids) / n_same if n_same else float("nan")
    if n == 0:
        return {"pair_same_cam": float("nan"), "pair_precision": float("nan"), "pair_recall": 0.0}
    return {
        "pair_same_cam": n_pairs(labels, cams) / n,
        "pair_precision": n_pairs(labels, pids) / n,
        "pair_recall": recall,
    }


def _pairs(*keys: np.ndarray) -> float:
    """Number of unordered pairs that agree on every key."""
    _, cnt = np.unique(np.stack(keys), axis=1, return_counts=True)
    return float((cnt * (cnt - 1) / 2).sum())


def cc_pair_stats(labels: np.ndarray, pids: np.ndarray, clothes: np.ndarray) -> dict[str, float]:
    """Clothes change: of the same-identity pairs in *different* outfits, the fraction that share a
    pseudo-label (``xoutfit_recall``: does the clustering join a person's outfits?); the same for pairs in
    the same outfit (``outfit_recall``); pair precision (pseudo-positive pairs of one identity); and
    ``pair_rate``, the fraction of all pairs that share a pseudo-label — what either recall would be if
    the labels were shuffled over the images (chance). Unlike NMI, these do not reward singletons."""
    ok = labels >= 0
    lab, pid, clo = labels[ok], pids[ok], clothes[ok]
    same_id_xo = _pairs(pids, clothes) - _pairs(pids)  # negative of the cross-outfit same-id pairs
    n = _pairs(lab)
    return {
        "pair_precision": _pairs(lab, pid) / n if n else float("nan"),
        "xoutfit_recall": (_pairs(lab, pid) - _pairs(lab, pid, clo)) / -same_id_xo,
        "outfit_recall": _pairs(lab, pid, clo) / _pairs(pids, clothes),
        "pair_rate": n / (len(labels) * (len(labels) - 1) / 2),
    }


def knn_identity(feats: torch.Tensor, pids: np.ndarray, clothes: np.ndarray, k: int = 5) -> dict[str, float]:
    """Clustering-free view of a memory: of each image's k nearest neighbours (cosine), the fraction of
    the same identity, and of the same identity in another outfit. Blocks of rows: no N×N array."""
    f = torch.nn.functional.normalize(feats.float(), dim=1)
    nb = []
    for i in range(0, len(f), 512):
        sim = f[i : i + 512] @ f.T
        sim[torch.arange(len(sim)), torch.arange(i, i + len(sim))] = -2.0  # not itself
        nb.append(sim.topk(k, dim=1).indices)
    idx = torch.cat(nb).numpy()
    same = pids[idx] == pids[:, None]
    other = clothes[idx] != clothes[:, None]
    return {"knn_id": float(same.mean()), "knn_id_xoutfit": float((same & other).mean())}


def agreements(multi: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Per pair (i, j): in how many of the granularities (rows of ``multi``) they share a cluster."""
    return ((multi[:, i] == multi[:, j]) & (multi[:, i] >= 0)).sum(0)


def paired(xs: list[dict[str, Any]], ys: list[dict[str, Any]], metric: str) -> str:
    """``xs`` minus ``ys`` run by run (same seeds): mean ± std of the differences and how many are > 0."""
    d = [x["final"].get(metric, np.nan) - y["final"].get(metric, np.nan) for x, y in zip(xs, ys, strict=True)]
    return f"{mean_std(d)} ({sum(v > 0 for v in d)}/{len(d)} > 0)"


class MemoryProbe:
    """``train_reid``'s ``on_epoch`` hook: clusters every memory (Jaccard + DBSCAN, the trainer's k1/k2,
    eps selected per memory at epoch 0 and kept, outliers left out) and records NMI against identity and
    outfit, the cross-outfit pair statistics and the k-NN identity rates."""

    def __init__(self, cfg: ReIDConfig, pids: np.ndarray, clothes: np.ndarray) -> None:
        self.cfg, self.pids, self.clothes = cfg, pids, clothes
        self.eps: dict[str, float] = {}
        self.records: list[dict[str, Any]] = []

    def __call__(self, epoch: int, mems: dict[str, torch.Tensor]) -> None:
        nmi = normalized_mutual_info_score
        for name, f in mems.items():
            D = jaccard_distance(f.numpy(), self.cfg.k1, self.cfg.k2)
            if name not in self.eps:
                self.eps[name] = float(select_eps(D, self.cfg.min_samples))
            db = DBSCAN(eps=self.eps[name], min_samples=self.cfg.min_samples, metric="precomputed")
            lab = db.fit_predict(D)
            ok = lab >= 0
            rec = {"epoch": epoch, "memory": name, "eps": self.eps[name], "n_clusters": int(lab.max() + 1)}
            rec["outlier_frac"] = float((~ok).mean())
            rec["nmi_id"] = float(nmi(self.pids[ok], lab[ok])) if ok.any() else float("nan")
            rec["nmi_outfit"] = float(nmi(self.clothes[ok], lab[ok])) if ok.any() else float("nan")
            rec |= cc_pair_stats(lab, self.pids, self.clothes) | knn_identity(f, self.pids, self.clothes)
            self.records.append(rec)


class AgreementProbe:
    """``train_reid``'s ``on_epoch`` hook for MGCE-HCL's premise on the real training features: clusters
    the memory at the run's five granularities (eps selected at epoch 0 as the trainer does, plus the
    arm's shift) and records, per number of agreeing granularities, the pairs' identity precision, and
    the share of L_ins's positive weight (base-label positives) on true pairs under w = 1 (HCL),
    g/G (MGCE-HCL) and (g/G)^16. Epochs 0, mid and last."""

    def __init__(self, cfg: ReIDConfig, pids: np.ndarray) -> None:
        self.cfg, self.pids = cfg, pids
        self.i, self.j = np.triu_indices(len(pids), 1)
        self.same = pids[self.i] == pids[self.j]
        self.eps: float | None = None
        self.records: list[dict[str, Any]] = []

    def __call__(self, epoch: int, mems: dict[str, torch.Tensor]) -> None:
        from structlearn.reid.hcl import granularity_labels
        from structlearn.reid.trainer import GRANULARITY_OFFSETS

        if epoch not in (0, self.cfg.epochs // 2, self.cfg.epochs):
            return
        cfg, i, j, same = self.cfg, self.i, self.j, self.same
        D = jaccard_distance(mems["rgb"].numpy(), cfg.k1, cfg.k2)
        if self.eps is None:
            self.eps = float(np.clip(select_eps(D, cfg.min_samples) + cfg.eps_shift, 0.01, 0.99))
        grid = tuple(float(np.clip(self.eps + o, 0.01, 0.99)) for o in GRANULARITY_OFFSETS)
        multi = granularity_labels(D, grid, cfg.min_samples)
        agree = agreements(multi, i, j)
        mid = len(grid) // 2
        base = (multi[mid, i] == multi[mid, j]) & (multi[mid, i] >= 0)
        rec: dict[str, Any] = {"epoch": epoch, "eps": self.eps}
        for g in range(1, len(grid) + 1):
            m = agree == g
            rec[f"prec{g}"] = float(same[m].mean()) if m.any() else float("nan")
            rec[f"pairs{g}"] = int(m.sum())
        for name, p in (("w1", 0.0), ("linear", 1.0), (f"p{SHARP_POWER:g}", SHARP_POWER)):
            w = (agree[base] / len(grid)) ** p
            rec[f"true_share_{name}"] = float((w * same[base]).sum() / max(w.sum(), 1e-12))
        self.records.append(rec)


PROBE_ARMS = ("HCL", "HCL, loose eps (+0.1)")  # the arms whose runs carry an AgreementProbe


def run_one(
    arm: str,
    shortcut: float,
    seed: int,
    epochs: int,
    fresh: bool,
    outfits: int = 1,
    palette: int | None = None,
    camera_cast: float = DEFAULT_CAST,
    cast_luma: bool = False,
    pose_jitter: float = 1.0,
) -> dict[str, Any]:
    arms = ARMS if outfits == 1 else CC_ARMS | CC_EXT_ARMS
    cast_luma = cast_luma and camera_cast > 0
    cache = RunCache(RESULTS / "runs")
    name = run_name(arm, shortcut, seed, epochs, outfits, palette, camera_cast, cast_luma, pose_jitter)
    cached = None if fresh else cache.load(name)
    if cached is not None and outfits > 1 and cached.get("revision", 1) < CC_REVISION.get(arm, 1):
        cached = None  # SiCL run from before the fidelity fixes: stale
    if cached is not None and outfits == 1 and arm in PROBE_ARMS and "agreement_probe" not in cached:
        cached = None  # cached before the agreement probe existed
    if cached is not None:
        return cached
    if CACHED_ONLY:
        raise MissingRunError(cache.path(name).name)
    data = make_reid_dataset(
        shortcut=shortcut,
        outfits_per_id=outfits,
        seed=seed,
        palette_size=palette,
        camera_cast=camera_cast,
        cast_preserves_luma=cast_luma,
        pose_jitter=pose_jitter,
    )
    cfg = ReIDConfig(epochs=epochs, seed=seed, **arms[arm])
    tr = data.train
    probe: Any = None
    if outfits > 1 and arm == CC_MEMORY_ARM:
        probe = MemoryProbe(cfg, tr.pids, tr.clothes)
    elif outfits == 1 and arm in PROBE_ARMS:
        probe = AgreementProbe(cfg, tr.pids)
    with Measure() as mem:
        res = train_reid(data, cfg) if probe is None else train_reid(data, cfg, on_epoch=probe)
    # Every epoch's pseudo-labels: do they group images by camera tint?
    pairs = [pair_stats(lab, tr.pids, tr.cams) for lab in res.label_history]
    if outfits > 1:  # clothes change: do they join a person's outfits?
        pairs = [
            p | cc_pair_stats(lab, tr.pids, tr.clothes)
            for p, lab in zip(pairs, res.label_history, strict=True)
        ]
        # NMI of the same labels shuffled over the images: the part of pseudo_nmi that the cluster sizes
        # alone (many singletons) produce; a finer partition (outfits) scores higher against it too.
        lab = res.label_history[-1]
        ok = lab >= 0
        perm = np.random.default_rng(0).permutation(lab[ok])
        pairs[-1] |= {
            "pseudo_nmi_shuffled": float(normalized_mutual_info_score(tr.pids[ok], perm)),
            "pseudo_nmi_outfit_shuffled": float(normalized_mutual_info_score(tr.clothes[ok], perm)),
        }
    out = {
        "arm": arm,
        "shortcut": shortcut,
        "outfits_per_id": outfits,
        "palette_size": palette,
        "camera_cast": camera_cast,
        "cast_preserves_luma": cast_luma,
        "pose_jitter": pose_jitter,
        "seed": seed,
        "config": {k: v for k, v in asdict(cfg).items() if k != "backbone"},
        "final": res.final | pairs[-1],
        "history": [h | p for h, p in zip(res.history, pairs, strict=True)],
        "last_pseudo_labels": res.pseudo_labels.tolist(),
        "final_gray": res.final_gray,  # CACL: branch F′ on grayscale query/gallery; None otherwise
        "eps": res.eps,
        "seconds": res.seconds,
        "peak_rss_mb": mem.peak_bytes / 2**20,
    }
    if probe is not None:
        out["memory_probe" if outfits > 1 else "agreement_probe"] = probe.records
    if outfits > 1 and arm in CC_REVISION:
        out["revision"] = CC_REVISION[arm]
    return cache.save(name, out)


def gray_map(rs: list[dict[str, Any]]) -> list[float | None]:
    """Per run: mAP of CACL's grayscale branch on grayscale query/gallery (None where not recorded)."""
    return [(r.get("final_gray") or {}).get("mAP") for r in rs]


def gray_branch_col(rs: list[dict[str, Any]]) -> str:
    vals = gray_map(rs)
    return "–" if None in vals else mean_std(vals)


class MissingRunError(Exception):
    """A run absent from the cache under --cached-only."""


CACHED_ONLY = False


def dense_jaccard(X: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """The dense reference (N × N arrays, a loop over points) used for the timing comparison only."""
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    n = len(X)
    d = 2 - 2 * X @ X.T
    rank = np.argsort(d, axis=1)[:, : k1 + 1]
    K = np.zeros((n, n), dtype=bool)
    K[np.arange(n)[:, None], rank] = True
    R = K & K.T
    kh = int(np.around(k1 / 2))
    Kh = np.zeros((n, n), dtype=bool)
    Kh[np.arange(n)[:, None], rank[:, : kh + 1]] = True
    Rh = Kh & Kh.T
    V = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        Ri = np.flatnonzero(R[i])
        exp = [Ri]
        for c in Ri:
            Rc = np.flatnonzero(Rh[c])
            if R[i, Rc].sum() > 2 / 3 * Rc.size:
                exp.append(Rc)
        e = np.unique(np.concatenate(exp))
        w = np.exp(-d[i, e])
        V[i, e] = w / w.sum()
    V = np.stack([V[rank[i, :k2]].mean(0) for i in range(n)])
    m = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        m[i] = np.minimum(V[i][None, :], V).sum(1)
    return 1 - m / (2 - m)


def premise(seeds: list[int]) -> list[list[Any]]:
    """Pair precision vs number of agreeing granularities (spec §4.2's premise check)."""
    from structlearn.reid.hcl import granularity_labels

    eps_list = (0.5, 0.55, 0.6, 0.65, 0.7)
    prec: dict[int, list[float]] = {g: [] for g in range(1, 6)}
    count: dict[int, int] = dict.fromkeys(range(1, 6), 0)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        centres = rng.normal(size=(100, 64))
        y = np.repeat(np.arange(100), 10)
        cam = rng.integers(0, 4, y.size)
        offsets = 0.8 * rng.normal(size=(4, 64))
        X = centres[y] + offsets[cam] + 1.1 * rng.normal(size=(y.size, 64))
        multi = granularity_labels(jaccard_distance(X, 20, 6), eps_list, 4)
        i, j = np.triu_indices(y.size, 1)
        agree = agreements(multi, i, j)
        same = y[i] == y[j]
        for g in range(1, 6):
            m = agree == g
            count[g] += int(m.sum())
            if m.any():
                prec[g].append(float(same[m].mean()))
    return [[g, mean_std(prec[g]), count[g]] for g in range(1, 6)]


def scaling(sizes: list[int], dense_max: int) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        ids = max(n // 16, 1)
        centres = rng.normal(size=(ids, 128))
        X = (centres[np.arange(n) % ids] + 0.8 * rng.normal(size=(n, 128))).astype(np.float32)
        row: dict[str, Any] = {"n": n}
        with Measure() as mem:
            t = time.perf_counter()
            D = jaccard_distance(X, 30, 6, max_distance=0.7)
            row["sparse_s"] = time.perf_counter() - t
        row["sparse_mb"] = mem.peak_bytes / 2**20
        row["nnz_per_row"] = D.nnz / n
        # DBSCAN at the default eps, and the training-statistics eps rule (one DBSCAN per grid value).
        with Measure() as mem:
            t = time.perf_counter()
            labels = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(D)
            row["dbscan_s"] = time.perf_counter() - t
        row["dbscan_mb"] = mem.peak_bytes / 2**20
        row["clusters"] = int(labels.max()) + 1
        t = time.perf_counter()
        select_eps(D)
        row["eps_rule_s"] = time.perf_counter() - t
        if n <= dense_max:
            with Measure() as mem:
                t = time.perf_counter()
                Dd = dense_jaccard(X, 30, 6)
                row["dense_s"] = time.perf_counter() - t
            row["dense_mb"] = mem.peak_bytes / 2**20
            with Measure() as mem:
                t = time.perf_counter()
                Dd = np.clip(Dd, 0.0, None)  # 1 − ratio: round-off can give −1e-7
                dense_labels = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(Dd)
                row["dense_dbscan_s"] = time.perf_counter() - t
            row["dense_dbscan_mb"] = mem.peak_bytes / 2**20
            row["dense_clusters"] = int(dense_labels.max()) + 1
        rows.append(row)
        log(str(row))
    return rows


# The report's title names the parts it holds (one invocation may run several).
PART_TITLES = {
    "main": "CACL vs single-branch baselines and ablations",
    "shortcut": "gain vs colour-shortcut strength",
    "trap": "shared-palette colour trap",
    "cast": "gain vs per-camera colour cast",
    "cast_luma": "gain vs luminance cast",
    "hcl": "HCL vs MGCE-HCL under loose eps",
    "cc": "clothes-change: RGB-only vs SiCL",
    "cc_cluster_on": "clothes-change: SiCL clustering memory",
    "cc_pose": "clothes-change: SiCL vs CACL along the body-shape cue",
    "scaling": "sparse Jaccard + DBSCAN time and memory vs N",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--shortcuts", type=float, nargs="+", default=[0.0, 0.4, 0.7, 1.0])
    ap.add_argument(
        "--casts",
        type=float,
        nargs="+",
        default=[0.0, 0.25, 0.5, 0.75, 1.0],
        help="parts cast / cast_luma: camera colour-cast strengths (shortcut fixed at 0.7)",
    )
    ap.add_argument(
        "--jitters",
        type=float,
        nargs="+",
        default=[1.0, 0.5, 0.25, 0.0],
        help="part cc_pose: pose-jitter strengths (1: the default data; 0: one silhouette per identity)",
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 50000])
    ap.add_argument("--dense-max", type=int, default=5000)
    ap.add_argument("--name", default="reid", help="report file name in benchmarks/results/reid (no suffix)")
    ap.add_argument(
        "--parts",
        nargs="+",
        default=["main", "shortcut", "trap", "hcl", "cc", "scaling"],
        choices=list(PART_TITLES),
        help="cast / cast_luma (not run by default): CACL's gain vs per-camera colour casts",
    )
    ap.add_argument("--trap-palette", type=int, default=3, help="trap part: outfit colours shared by all ids")
    ap.add_argument("--fresh", action="store_true", help="ignore cached runs")
    ap.add_argument(
        "--cached-only",
        action="store_true",
        help="write the report from cached runs; skip sections with gaps",
    )
    args = ap.parse_args()
    global CACHED_ONLY
    CACHED_ONLY = args.cached_only
    if min(args.seeds, default=-1) < 0 or args.epochs < 1 or args.dense_max < 0:
        ap.error("seeds must be >= 0, --epochs >= 1, --dense-max >= 0")
    if not all(0.0 <= v <= 1.0 for v in [*args.shortcuts, *args.casts]):
        ap.error("--shortcuts and --casts must lie in [0, 1]")
    if not all(0.0 <= v <= 2.0 for v in args.jitters):
        ap.error("--jitters must lie in [0, 2]")
    RESULTS.mkdir(parents=True, exist_ok=True)
    sections, data = [], {}

    def section(name: str, fn: Any) -> None:
        try:
            fn()
        except MissingRunError as exc:
            sections.append(
                f"## {name}\n\nNot reported: run {exc} is missing from the cache (--cached-only)."
            )

    def part_main() -> None:
        rows, runs = [], {}
        for arm in MAIN_ARMS:
            rs = [run_one(arm, DEFAULT_SHORTCUT, s, args.epochs, args.fresh) for s in args.seeds]
            runs[arm] = rs
            rows.append(
                [arm]
                + [mean_std([r["final"][m] for r in rs]) for m in METRICS]
                + [gray_branch_col(rs)]
                + [mean_std([r["seconds"] for r in rs], ".1f"), f"{max(r['peak_rss_mb'] for r in rs):.0f}"]
            )
            log(str(rows[-1]))
        sections.append(
            f"## Methods and ablations (shortcut strength {DEFAULT_SHORTCUT}, {args.epochs} epochs, "
            f"seeds {args.seeds})\n\n"
            + "Gray-branch mAP: CACL's second network F′ on the grayscale query/gallery (– for one-branch"
            " methods, for the grayscale-less ablation and for runs cached before it was recorded).\n\n"
            + markdown_table(["method", *METRICS, "gray-branch mAP", "seconds", "peak extra RSS MB"], rows)
        )
        data["main"] = {a: [r["final"] | {"seconds": r["seconds"]} for r in rs] for a, rs in runs.items()}

    if "main" in args.parts:
        section("Methods and ablations", part_main)

    def part_sweep(knob: str, palette: int | None = None, cast_luma: bool = False) -> None:
        """Paired SpCL-style vs CACL (γ=2) runs along one knob: ``shortcut`` (outfit-colour saturation, cast
        fixed at 0.25) or ``cast`` (per-camera colour-cast strength, shortcut fixed at 0.7; there a third
        arm, CACL clustering its grayscale memory, and both CACL arms' grayscale-branch mAP)."""
        values = args.shortcuts if knob == "shortcut" else args.casts
        sweep = {"spcl": "SpCL-style (1 branch)", "cacl": "CACL (γ=2, paper)"}
        if knob == "cast":
            sweep["cacl_gray_clusters"] = GRAY_ARM
        rows: list[list[Any]] = []
        curve: dict[str, list[list[float]]] = {k: [] for k in sweep}
        every: dict[str, list[dict[str, Any]]] = {k: [] for k in sweep}
        gains: dict[str, list[list[float]]] = {"cacl": [], "gray_vs_spcl": [], "gray_vs_cacl": []}
        gray_branch: dict[str, list[list[float | None]]] = {"cacl": [], "cacl_gray_clusters": []}

        def paired(x: list[dict[str, Any]], y: list[dict[str, Any]]) -> list[float]:
            return [q["final"]["mAP"] - p["final"]["mAP"] for p, q in zip(x, y, strict=True)]

        def col(rs: list[dict[str, Any]], m: str) -> str:
            if any(m not in r["final"] for r in rs):  # runs cached before the metric existed
                return "–"
            return mean_std([r["final"][m] for r in rs])

        for v in values:
            shortcut, cast = (v, DEFAULT_CAST) if knob == "shortcut" else (DEFAULT_SHORTCUT, v)
            rs = {
                k: [
                    run_one(arm, shortcut, seed, args.epochs, args.fresh, 1, palette, cast, cast_luma)
                    for seed in args.seeds
                ]
                for k, arm in sweep.items()
            }
            for k, r in rs.items():
                every[k] += r
                curve[k].append([x["final"]["mAP"] for x in r])
            a, b = rs["spcl"], rs["cacl"]
            gains["cacl"].append(paired(a, b))
            rows.append(
                [v, col(a, "mAP"), col(b, "mAP"), mean_std(gains["cacl"][-1]), col(a, "R1"), col(b, "R1")]
            )
            if knob == "cast":
                c = rs["cacl_gray_clusters"]
                gains["gray_vs_spcl"].append(paired(a, c))
                gains["gray_vs_cacl"].append(paired(b, c))
                gray_branch["cacl"].append(gray_map(b))
                gray_branch["cacl_gray_clusters"].append(gray_map(c))
                rows[-1] += [
                    col(c, "mAP"),
                    mean_std(gains["gray_vs_spcl"][-1]),
                    mean_std(gains["gray_vs_cacl"][-1]),
                    col(c, "R1"),
                    gray_branch_col(b),
                    gray_branch_col(c),
                ]
                rows[-1] += [
                    col(r, m) for m in ("pseudo_nmi", "pair_precision", "pair_same_cam") for r in (a, b, c)
                ]
            log(str(rows[-1]))
        headers = [knob, "SpCL mAP", "CACL mAP", "gain (paired)", "SpCL R1", "CACL R1"]
        if knob == "shortcut":
            key = "shortcut" if palette is None else f"shortcut_palette{palette}"
            title = (
                "## CACL's gain over the single branch vs colour-shortcut strength"
                if palette is None
                else f"## The same with colour as a trap: {palette} outfit colours shared by all "
                f"identities\n\n`palette_size` = {palette}: colour rules out only part of the other "
                "identities, yet at a high shortcut it dominates pixel differences (the setting of CACL's "
                "claim; the default palette of n_ids // 3 colours makes colour an informative cue)"
            )
        else:
            key = "cast_luma" if cast_luma else "cast"
            headers += [
                "CACL-M̃ mAP",
                "CACL-M̃ − SpCL (paired)",
                "CACL-M̃ − CACL (paired)",
                "CACL-M̃ R1",
                "CACL gray-branch mAP",
                "CACL-M̃ gray-branch mAP",
                *(
                    f"{arm} {m}"
                    for m in ("NMI", "pair prec.", "same-cam pairs")
                    for arm in ("SpCL", "CACL", "CACL-M̃")
                ),
            ]
            ref = [
                pair_stats(tr.pids, tr.pids, tr.cams)["pair_same_cam"]
                for tr in (make_reid_dataset(seed=seed).train for seed in args.seeds)
            ]
            title = (
                (
                    "## CACL's gain over the single branch vs camera colour-cast strength"
                    if not cast_luma
                    else "## The same with hue-only camera casts (`cast_preserves_luma=True`)"
                )
                + f"\n\nShortcut {DEFAULT_SHORTCUT}, default palette; `camera_cast` c multiplies channel k of"
                " camera j's images by 1 + c·u_jk, u ~ U(−1, 1) (one draw per seed, scaled by c), so the same"
                " person looks different across cameras while people in one camera share a tint; evaluation"
                " removes same-identity same-camera gallery entries. "
                + (
                    "Every pixel is rescaled to its uncast luma, so the grayscale view of CACL's second"
                    " branch does not see the camera (up to clipping)."
                    if cast_luma
                    else "The factors change brightness too, so the grayscale view is not cast-invariant."
                )
                + " CACL-M̃: CACL whose pseudo-labels come from the grayscale branch's memory M̃ instead of"
                " the RGB memory M (`cluster_on='gray'`, our extension; paper and code cluster M); mAP / R1"
                " are the RGB branch's, as for CACL. Gray-branch mAP: the second network F′ on the"
                " grayscale query/gallery (not what CACL deploys)."
                + " Last-epoch pseudo-labels: NMI against identities; over the pairs sharing a pseudo-label,"
                " the fraction of the same identity (pair prec.) and from the same camera (same-cam pairs:"
                f" {mean_std(ref)} for the true identities, ~1/6 for random pairs, 1 for clusters by camera)."
            )
        sections.append(title + "\n\n" + markdown_table(headers, rows))
        if knob == "cast":
            secs = {k: mean_std([r["seconds"] for r in rs], ".1f") for k, rs in every.items()}
            sections[-1] += (
                f"\n\nWall time per run (one thread, shared machine): SpCL {secs['spcl']} s, "
                f"CACL {secs['cacl']} s, CACL-M̃ {secs['cacl_gray_clusters']} s."
            )
        data[key] = {f"{knob}s": values, **curve, "gain": gains["cacl"]}
        if knob == "cast":
            data[key] |= {
                "gain_gray_clusters_vs_spcl": gains["gray_vs_spcl"],
                "gain_gray_clusters_vs_cacl": gains["gray_vs_cacl"],
                "gray_branch_mAP": gray_branch,
            }
        fig, axes = subplots(
            1, 2 if knob == "cast" else 1, figsize=(10 if knob == "cast" else 5, 3.5), layout="constrained"
        )
        ax = axes[0] if knob == "cast" else axes
        for name, vals in curve.items():
            arr = np.asarray(vals)
            ax.errorbar(values, arr.mean(1), yerr=arr.std(1), marker="o", capsize=3, label=name)
        label = "colour-shortcut strength" if knob == "shortcut" else "camera colour-cast strength"
        ax.set_xlabel(label)
        ax.set_ylabel("mAP (last epoch)")
        ax.legend()
        if knob == "cast":
            for name, g, colour in (("CACL", gains["cacl"], "k"), ("CACL-M̃", gains["gray_vs_spcl"], "C2")):
                g = np.asarray(g)
                axes[1].errorbar(
                    values, g.mean(1), yerr=g.std(1), marker="o", capsize=3, color=colour, label=name
                )
            axes[1].axhline(0.0, color="grey", lw=0.8)
            axes[1].set_xlabel(label)
            axes[1].set_ylabel("gain over SpCL (mAP)")
            axes[1].legend()
        png = {
            "shortcut": "gain_vs_shortcut.png",
            f"shortcut_palette{palette}": f"gain_vs_shortcut_p{palette}.png",
            "cast": "gain_vs_cast.png",
            "cast_luma": "gain_vs_cast_luma.png",
        }[key]
        save_figure(fig, RESULTS / png)

    if "shortcut" in args.parts:
        section("Gain vs shortcut strength", lambda: part_sweep("shortcut"))
    if "trap" in args.parts:  # colour shared by all identities (issue 14: the informative-colour confound)
        section(
            "Gain vs shortcut strength, colour as a trap", lambda: part_sweep("shortcut", args.trap_palette)
        )
    if "cast" in args.parts:  # colour that changes with the camera (issue 14: the confound of the paper)
        section("Gain vs camera colour-cast strength", lambda: part_sweep("cast"))
    if "cast_luma" in args.parts:
        section("Gain vs hue-only camera-cast strength", lambda: part_sweep("cast", cast_luma=True))

    def part_hcl() -> None:
        rows, runs_h = [], {}
        for arm in HCL_ARMS:
            rs = [run_one(arm, DEFAULT_SHORTCUT, s, args.epochs, args.fresh) for s in args.seeds]
            runs_h[arm] = rs
            rows.append([arm] + [mean_std([r["final"][m] for r in rs]) for m in METRICS])
            log(str(rows[-1]))
        prem = premise(args.seeds)
        label_cols = ("n_clusters", "pair_precision", "pair_recall")
        rows_n = []
        names = ("HCL", "MGCE-HCL", f"MGCE-HCL w^{SHARP_POWER:g} (ours)")
        for shift, trio in HCL_SHIFTS.items():
            for name, arm in zip(names, trio, strict=True):
                rs = runs_h[arm]
                rows_n.append(
                    [f"+{shift}", name]
                    + [mean_std([r["final"][k] for r in rs]) for k in ("mAP", "R1")]
                    + [mean_std([r["final"].get(k, np.nan) for r in rs]) for k in label_cols]
                )
            for name, arm in zip(names[1:], trio[1:], strict=True):
                rows_n.append(
                    [f"+{shift}", f"{name} − HCL", paired(runs_h[arm], runs_h[trio[0]], "mAP")]
                    + [""] * (1 + len(label_cols))
                )
        drops = {}
        for k, name in enumerate(names):
            base = [r["final"]["mAP"] for r in runs_h[HCL_SHIFTS[0.0][k]]]
            drops[name] = {
                shift: [r["final"]["mAP"] - b for r, b in zip(runs_h[arms[k]], base, strict=True)]
                for shift, arms in HCL_SHIFTS.items()
                if shift > 0
            }
        sections.append(
            "## HCL vs MGCE-HCL, with the base eps and with a deliberately loose eps (+0.1)\n\n"
            + markdown_table(["method", *METRICS], rows)
            + "\n\nLabel noise along the eps shift (added to the selected eps; MGCE-HCL's five granularities"
            f" move with it). w^{SHARP_POWER:g}: MGCE-HCL with agreement_power={SHARP_POWER:g} (our option,"
            " chosen on data seeds 0–2). Pseudo-labels of the last epoch: `pair_precision`, pseudo-positive"
            " pairs of one identity; `pair_recall`, same-identity pairs that share a pseudo-label. Paired"
            " rows: each MGCE-HCL arm minus HCL, mAP, by seed.\n\n"
            + markdown_table(["eps shift", "method", "mAP", "R1", *label_cols], rows_n)
            + "\n\nmAP lost against each method's own base-eps run (paired by seed): "
            + "; ".join(
                f"{name} " + ", ".join(f"+{shift}: {mean_std(v)}" for shift, v in per.items())
                for name, per in drops.items()
            )
            + "\n\nPremise: precision of pseudo-positive pairs against the number of DBSCAN granularities"
            " (of 5, eps ∈ {0.5, …, 0.7}) that put the pair together (100 Gaussian identities × 10 samples,"
            " 64-d, camera offsets; mean ± std over seeds):\n\n"
            + markdown_table(["agreeing granularities", "pair precision", "pairs"], prem)
        )
        probe_rows = []
        for arm in PROBE_ARMS:
            recs = [r["agreement_probe"] for r in runs_h[arm] if "agreement_probe" in r]
            if len(recs) != len(runs_h[arm]):
                continue
            for k, rec0 in enumerate(recs[0]):
                per = [rs[k] for rs in recs]
                probe_rows.append(
                    [arm, rec0["epoch"]]
                    + [mean_std([x[f"prec{g}"] for x in per]) for g in range(1, 6)]
                    + [
                        mean_std([x[f"true_share_{w}"] for x in per])
                        for w in ("w1", "linear", f"p{SHARP_POWER:g}")
                    ]
                )
        if probe_rows:
            sections.append(
                "The same premise on the real training features (the HCL runs' memory, clustered at the"
                " run's five granularities, epochs 0 / mid / last; mean ± std over seeds): pair precision"
                " by the number of agreeing granularities, and the share of L_ins's positive weight"
                " (positives of the base labels) that falls on true pairs under HCL's w = 1, MGCE-HCL's"
                f" g/5 and (g/5)^{SHARP_POWER:g}.\n\n"
                + markdown_table(
                    [
                        "run",
                        "epoch",
                        *(f"precision, {g}/5 agree" for g in range(1, 6)),
                        "true share, w = 1",
                        "g/5",
                        f"(g/5)^{SHARP_POWER:g}",
                    ],
                    probe_rows,
                )
            )
        data["hcl"] = {a: [r["final"] for r in rs] for a, rs in runs_h.items()}

    if "hcl" in args.parts:
        section("HCL vs MGCE-HCL", part_hcl)

    def part_cc() -> None:
        cc_metrics = ("mAP", "R1", "R10", "cc_mAP", "cc_R1", "cc_R10")
        label_metrics = (
            "n_clusters",
            "pseudo_nmi",
            "pseudo_nmi_shuffled",
            "pseudo_nmi_outfit",
            "pseudo_nmi_outfit_shuffled",
            "pair_precision",
            "xoutfit_recall",
            "outfit_recall",
            "pair_rate",
        )
        rows, rows_l, runs_c = [], [], {}
        for arm in CC_ARMS:
            rs = [run_one(arm, DEFAULT_SHORTCUT, s, args.epochs, args.fresh, CC_OUTFITS) for s in args.seeds]
            runs_c[arm] = rs
            rows.append(
                [arm]
                + [mean_std([r["final"].get(m, float("nan")) for r in rs]) for m in cc_metrics]
                + [mean_std([r["seconds"] for r in rs], ".1f")]
            )
            rows_l.append(
                [arm] + [mean_std([r["final"].get(m, float("nan")) for r in rs]) for m in label_metrics]
            )
            log(str(rows[-1]))
        seeds = ", ".join(str(s) for s in args.seeds)
        sections.append(
            f"## Clothes change ({CC_OUTFITS} outfits per identity): RGB-only methods vs SiCL\n\n"
            f"Mean ± std over seeds {seeds} (data and model), {args.epochs} epochs, last epoch (no model"
            " selection). Standard protocol (same identity and camera removed) and clothes-change protocol"
            " (`cc_`: same identity and same outfit removed too). SiCL as the official code runs it"
            " (refinement, `--cr`; the silhouette's own augmentation; hm.py's neighbour term). The"
            " silhouettes are exact (noise-free), which flatters SiCL. s: wall time per run (one thread).\n\n"
            + markdown_table(["method", *cc_metrics, "s / run"], rows)
            + "\n\nPseudo-labels of the last epoch. `pseudo_nmi*` as the trainer reports them (outliers as"
            " singletons); `*_shuffled`: the same labels permuted over the images (seed 0) — the NMI that"
            " the cluster sizes alone give. `pair_precision`: pseudo-positive pairs of one identity;"
            " `xoutfit_recall`: same-identity pairs in *different* outfits that share a pseudo-label"
            " (joining a person's outfits is SiCL's claim); `outfit_recall`: the same for pairs in one"
            " outfit; `pair_rate`: the fraction of all pairs that share a pseudo-label, the recall that"
            " shuffled labels would give (chance).\n\n" + markdown_table(["method", *label_metrics], rows_l)
        )
        data["cc"] = {a: [r["final"] for r in rs] for a, rs in runs_c.items()}
        # Paired by seed (same data and model seed): SiCL minus every other arm.
        rows_d = []
        for arm in CC_ARMS:
            if arm == CC_MEMORY_ARM:
                continue
            rows_d.append(
                [arm]
                + [paired(runs_c[CC_MEMORY_ARM], runs_c[arm], m) for m in ("mAP", "cc_mAP", "xoutfit_recall")]
            )
        sections.append(
            f"Paired by seed: {CC_MEMORY_ARM} minus each arm (mean ± std of the differences; seeds with a"
            " positive difference).\n\n"
            + markdown_table(["other arm", "Δ mAP", "Δ cc_mAP", "Δ xoutfit_recall"], rows_d)
        )
        probes = [r["memory_probe"] for r in runs_c[CC_MEMORY_ARM] if "memory_probe" in r]
        if len(probes) != len(args.seeds):
            return
        probe_metrics = (
            "n_clusters",
            "nmi_id",
            "nmi_outfit",
            "pair_precision",
            "xoutfit_recall",
            "pair_rate",
        )
        probe_metrics += ("knn_id", "knn_id_xoutfit")
        rows_p = []
        for epoch in sorted({0, args.epochs // 2, args.epochs}):
            for memory in ("rgb", "mask", "fused"):
                recs = [next(x for x in p if x["epoch"] == epoch and x["memory"] == memory) for p in probes]
                rows_p.append([epoch, memory] + [mean_std([x[m] for x in recs]) for m in probe_metrics])
        sections.append(
            f"### Which memory's clusters follow identity? ({CC_MEMORY_ARM}, seeds {seeds})\n\n"
            "Each memory of the SiCL run clustered as the trainer clusters M_rgb (Jaccard k1/k2, DBSCAN with"
            " eps selected per memory at epoch 0 and kept; no refinement; outliers left out of NMI and"
            " pairs),"
            " before the clustering of the epoch (0: initial features; last: after training). Only M_rgb's"
            " clusters are trained on (as in the official code). `knn_id`: of each image's 5 nearest"
            " neighbours in the memory, the fraction of its identity (chance ≈ 7/1199 = 0.006);"
            " `knn_id_xoutfit`: of its identity in another outfit.\n\n"
            + markdown_table(["epoch", "memory", *probe_metrics], rows_p)
        )
        data["cc_memory_probe"] = probes
        fig, axes = subplots(1, 3, figsize=(13, 3.6))
        for ax, m, title in zip(
            axes,
            ("xoutfit_recall", "knn_id_xoutfit", "pair_precision"),
            ("cross-outfit pair recall", "5-NN: same id, other outfit", "pair precision"),
            strict=True,
        ):
            for memory in ("rgb", "mask", "fused"):
                curves = np.array([[x[m] for x in p if x["memory"] == memory] for p in probes])
                ep = np.arange(curves.shape[1])
                ax.plot(ep, curves.mean(0), label=memory)
                ax.fill_between(ep, curves.min(0), curves.max(0), alpha=0.2)
            ax.set_title(title)
            ax.set_xlabel("epoch")
        axes[0].legend()
        fig.suptitle(f"SiCL memories clustered each epoch (seeds {seeds}; band: min–max)")
        save_figure(fig, RESULTS / f"{args.name}_memories.png")

    def part_cc_cluster_on() -> None:
        arms = ["CACL (RGB + gray)", CC_MEMORY_ARM, *CC_EXT_ARMS]
        metrics = ("mAP", "R1", "cc_mAP", "cc_R1", "pair_precision", "xoutfit_recall", "pair_rate")
        runs = {
            a: [run_one(a, DEFAULT_SHORTCUT, s, args.epochs, args.fresh, CC_OUTFITS) for s in args.seeds]
            for a in arms
        }
        rows = [
            [a]
            + [mean_std([r["final"].get(m, np.nan) for r in rs]) for m in metrics]
            + [mean_std([r["seconds"] for r in rs], ".1f")]
            for a, rs in runs.items()
        ]
        rows_d = []
        for a in CC_EXT_ARMS:
            rows_d.append(
                [a] + [paired(runs[a], runs[CC_MEMORY_ARM], m) for m in ("mAP", "cc_mAP", "xoutfit_recall")]
            )
        seeds = ", ".join(str(s) for s in args.seeds)
        sections.append(
            "## Clothes change: SiCL with its pseudo-labels from another memory (our extension)\n\n"
            f"Seeds {seeds}, {args.epochs} epochs, {CC_OUTFITS} outfits per identity, last epoch. The"
            " official code clusters M_rgb (the `SiCL` row); `cluster_on` takes the labels from the"
            " silhouette memory, the fused memory, or M_rgb and M_mask together (mean of the two cosines)."
            " Columns as in part cc.\n\n"
            + markdown_table(["method", *metrics, "s / run"], rows)
            + f"\n\nPaired by seed: each arm minus {CC_MEMORY_ARM}.\n\n"
            + markdown_table(["arm", "Δ mAP", "Δ cc_mAP", "Δ xoutfit_recall"], rows_d)
        )
        data["cc_cluster_on"] = {a: [r["final"] for r in rs] for a, rs in runs.items()}

    def part_cc_pose() -> None:
        """SiCL's premise needs a body-shape cue that survives the outfit change; the pose jitter hides it.
        Every arm along ``--jitters`` (1 = part cc's data), with the cue's strength measured on the raw
        silhouettes (5-NN identity rates), paired by seed."""
        arms = [*list(CC_ARMS)[:4], CC_EXT_ARMS_MASK]
        metrics = ("mAP", "cc_mAP", "cc_R1", "pair_precision", "xoutfit_recall", "pair_rate")
        rows, rows_d, cue = [], [], []
        curves: dict[str, list[list[float]]] = {a: [] for a in arms}
        for j in args.jitters:
            runs = {
                a: [
                    run_one(a, DEFAULT_SHORTCUT, s, args.epochs, args.fresh, CC_OUTFITS, pose_jitter=j)
                    for s in args.seeds
                ]
                for a in arms
            }
            raw = [
                knn_identity(torch.from_numpy(tr.silhouettes.reshape(len(tr.pids), -1)), tr.pids, tr.clothes)
                for tr in (
                    make_reid_dataset(outfits_per_id=CC_OUTFITS, seed=s, pose_jitter=j).train
                    for s in args.seeds
                )
            ]
            cue.append(
                [j, mean_std([r["knn_id"] for r in raw]), mean_std([r["knn_id_xoutfit"] for r in raw])]
            )
            for a, rs in runs.items():
                rows.append(
                    [j, a]
                    + [mean_std([r["final"].get(m, np.nan) for r in rs]) for m in metrics]
                    + [mean_std([r["seconds"] for r in rs], ".1f")]
                )
                curves[a].append([r["final"]["cc_mAP"] for r in rs])
                log(str(rows[-1]))
            for a, b in (
                (CC_MEMORY_ARM, "CACL (RGB + gray)"),
                (CC_MEMORY_ARM, "Cluster-Contrast (RGB)"),
                (CC_EXT_ARMS_MASK, CC_MEMORY_ARM),
            ):
                rows_d.append(
                    [j, f"{a} − {b}"] + [paired(runs[a], runs[b], m) for m in ("cc_mAP", "xoutfit_recall")]
                )
        seeds = ", ".join(str(s) for s in args.seeds)
        sections.append(
            "## Clothes change vs the strength of the body-shape cue (pose jitter)\n\n"
            f"Seeds {seeds}, {args.epochs} epochs, {CC_OUTFITS} outfits per identity, last epoch."
            " `make_reid_dataset(pose_jitter=j)` scales each image's placement, scale, shoulder and stride"
            " jitter (1: part cc's data; 0: one silhouette per identity). The cue's strength, on the raw"
            " training silhouettes (cosine 5-NN; chance ≈ 0.006):\n\n"
            + markdown_table(["pose jitter", "5-NN same identity", "5-NN same identity, other outfit"], cue)
            + "\n\nColumns as in part cc.\n\n"
            + markdown_table(["pose jitter", "method", *metrics, "s / run"], rows)
            + "\n\nPaired by seed.\n\n"
            + markdown_table(["pose jitter", "difference", "Δ cc_mAP", "Δ xoutfit_recall"], rows_d)
        )
        data["cc_pose"] = {"jitters": args.jitters, "cue": cue, "cc_mAP": curves}
        fig, ax = subplots(1, 1, figsize=(6, 4))
        for a, c in curves.items():
            arr = np.array(c)
            ax.errorbar(args.jitters, arr.mean(1), yerr=arr.std(1), label=a, capsize=3)
        ax.set_xlabel("pose jitter (0: one silhouette per identity)")
        ax.set_ylabel("clothes-change mAP")
        ax.legend(fontsize=7)
        ax.set_title(f"Clothes change vs body-shape cue (seeds {seeds})")
        save_figure(fig, RESULTS / f"{args.name}_pose.png")

    if "cc_pose" in args.parts:
        section("Clothes change vs pose jitter", part_cc_pose)
    if "cc_cluster_on" in args.parts:
        section("Clothes change, SiCL cluster_on", part_cc_cluster_on)
    if "cc" in args.parts:
        section("Clothes change", part_cc)
    if "scaling" in args.parts:
        rows_s = scaling(args.sizes, args.dense_max)
        sections.append(
            "## Jaccard distance + DBSCAN: sparse vs dense (k1 = 30, k2 = 6, 128-d features)\n\n"
            "DBSCAN: eps 0.6, min_samples 4, on the precomputed distances; eps rule: the training-statistics"
            " rule of `select_eps` (one DBSCAN per grid value, 17 values). Peak MB: resident memory above"
            " the level before each step.\n\n"
            + markdown_table(
                [
                    "N",
                    "sparse Jaccard s",
                    "peak MB",
                    "pairs / row",
                    "DBSCAN s",
                    "DBSCAN MB",
                    "clusters",
                    "eps rule s",
                    "dense Jaccard s",
                    "dense MB",
                    "dense DBSCAN s",
                    "dense DBSCAN MB",
                    "dense clusters",
                ],
                [
                    [
                        r["n"],
                        f"{r['sparse_s']:.2f}",
                        f"{r['sparse_mb']:.0f}",
                        f"{r['nnz_per_row']:.1f}",
                        f"{r['dbscan_s']:.2f}",
                        f"{r['dbscan_mb']:.0f}",
                        r["clusters"],
                        f"{r['eps_rule_s']:.2f}",
                        f"{r['dense_s']:.2f}" if "dense_s" in r else "not run (N×N)",
                        f"{r['dense_mb']:.0f}" if "dense_mb" in r else "–",
                        f"{r['dense_dbscan_s']:.2f}" if "dense_dbscan_s" in r else "–",
                        f"{r['dense_dbscan_mb']:.0f}" if "dense_dbscan_mb" in r else "–",
                        r.get("dense_clusters", "–"),
                    ]
                    for r in rows_s
                ],
            )
        )
        data["scaling"] = rows_s
    title = "Unsupervised ReID: " + "; ".join(PART_TITLES[p] for p in PART_TITLES if p in args.parts)
    write_report(RESULTS, args.name, title, "\n\n".join(sections), data)


if __name__ == "__main__":
    main()
