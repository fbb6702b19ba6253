"""One harness for clustering-based unsupervised ReID: SpCL-style, Cluster-Contrast, HCL and CACL.

Each epoch (spec segmentation_reid.md §2.2–2.4, §3): features of every training image → sparse
k-reciprocal Jaccard distance → DBSCAN pseudo-identities (eps from the training distances by
:func:`~structlearn.reid.pseudo_labels.select_eps` at the first epoch, unless given) →
``iters_per_epoch`` steps on P×K batches against memory banks → evaluation on query/gallery (mAP, CMC,
mINP) and pseudo-label NMI/ARI against the true identities (diagnostics only: nothing is selected on
them; the last epoch is reported).

Methods (``method``):
- ``spcl`` — one branch; instance (hybrid) memory; outliers kept as singletons; the memory's features
  are the clustering input (SpCL, arXiv 2006.02713).
- ``cluster-contrast`` — one branch; centroid memory rebuilt from features re-extracted every epoch;
  outliers dropped; GeM pooling by default (Cluster-Contrast, arXiv 2103.11568).
- ``hcl`` / ``mgce-hcl`` — one branch; hybrid loss L_clu + L_ins on the instance memory; MGCE-HCL weighs
  instance positives by the agreement of DBSCAN at five eps around the base one
  (:mod:`structlearn.reid.hcl`, arXiv 2201.11995, reconstruction). ``eps_shift`` makes eps deliberately
  loose (label noise) for the robustness test; ``agreement_power`` p sharpens the weights to
  (agreement)^p (1: the spec's linear weights).
- ``sicl`` — SiCL (arXiv 2305.13600, clothes-change ReID; as the official code ``MingkunLishigure/SiCL``
  runs it): an RGB branch, a silhouette branch (the silhouette with its own flip/shift draw, as the
  official loader's separate transform), a fusion head on detached features, three memories (RGB, mask,
  fused) sharing the labels of the RGB memory's clustering, refined as CACL's (``--cr``, in every
  official command), neighbour clusters from the fused memory with a linear curriculum up to
  ``allknn``, cross-view cosines pulling the RGB predictor toward the mask branch (fusion head and
  neighbour term: :mod:`structlearn.reid.sicl`); focal γ = 4 (code); inference with the RGB branch
  only. Ablations: ``allknn=0``, ``inter_branch=False``, ``refinement=False``.
- ``cacl`` — CACL (arXiv 2106.07846): branch F on the RGB view, branch F′ on the grayscale view, a
  predictor G on F; losses L = focal(x; M) + focal(x̃; M̃) − cos(z, sg(x̃)) − cos(z, sg(ũ_ω)) (spec §3.2,
  paper form; ``focal_gamma`` 2 = paper, 4 = code); pseudo-labels from M; refinement with a tight
  clustering at eps − ``eps_gap``. Ablations: ``gray_branch=False`` (F′ sees RGB), ``inter_branch=False``
  (no cosine terms), ``refinement=False``.

Our extension (not in the paper or the official code): ``cluster_on`` picks the memory whose features
feed the Jaccard + DBSCAN clustering (and CACL's refinement): ``"rgb"`` — M, the RGB branch's memory
(paper, code; the default, unchanged); ``"gray"`` — M̃, the grayscale branch's memory; ``"both"`` — the
two L2-normalised memory features concatenated and divided by √2, so the cosine of two images is the mean
of the two branches' cosines. Why: under per-camera casts that keep the luma (hue-only), M groups images
by camera while M̃ does not see the cast; clustering on M̃ raised the evaluated RGB branch's mAP from
0.427 to 0.527 (hue-only cast 0.5) and 0.220 to 0.328 (cast 1; paired +0.10 ± 0.08 / +0.11 ± 0.04, seeds
100–102, 12 epochs, shortcut 0.7, every seed positive). It is no free gain: without a cast it costs
0.13 mAP (0.899 → 0.769, every seed), where colour is a useful cue that M̃ lacks
(benchmarks/results/reid/reid_cast.md, the full sweep). ``"both"`` on the default data: 0.641 against
0.585 (paired +0.057 ± 0.039, every seed; benchmarks/results/reid/reid.md), not run on the cast sweeps.
For SiCL (also ours; the official code clusters M_rgb only): ``"mask"`` — M_mask, the silhouette
branch's memory; ``"fused"`` — M_fus; ``"rgb+mask"`` — M_rgb and M_mask as ``"both"`` does. Why: the
issue-15 probe found M_mask's clusters joining a person's outfits at 13× chance, M_rgb's at 2×
(benchmarks/results/reid/reid_cc.md); these ask whether SiCL gains when its labels come from there.
:class:`ReIDResult` also returns the pseudo-labels of every epoch and, for CACL with its grayscale
branch, the final metrics of F′ on the grayscale query/gallery (``final_gray``).

``memory`` picks the memory bank: ``"instance"`` (SpCL's hybrid memory; the default of SpCL-style,
CACL, HCL and SiCL, as in their code) or ``"centroid"`` (Cluster-Contrast's; its default). With
``memory="centroid"`` a method trains like Cluster-Contrast: features re-extracted every epoch feed the
clustering, outliers (and members CACL's refinement removes) are dropped for the epoch, and each branch
has a centroid memory rebuilt from its fresh features; for CACL the inter-branch target ũ_ω(i) is then the
gray branch's centroid. ``method="spcl", memory="centroid"`` is Cluster-Contrast with average pooling.
CACL on a centroid memory is our combination, not the paper's (which builds on SpCL's memory).

Optimiser Adam (lr 3.5e-4, wd 5e-4) as in the reference code. Augmentation: horizontal flip and a
random shift of ``augment_shift`` pixels; branch F′ receives the grayscale of the same augmented image.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from tqdm.auto import tqdm

from structlearn.data.reid import ReIDDataset, ReIDSplit
from structlearn.reid.backbone import Predictor, ReIDNet, ReIDNetConfig, to_gray
from structlearn.reid.evaluation import evaluate_model
from structlearn.reid.hcl import agreement_weights, granularity_labels, instance_loss
from structlearn.reid.jaccard import jaccard_distance
from structlearn.reid.memory import ClusterMemory, InstanceMemory
from structlearn.reid.pseudo_labels import assign_outliers, select_eps
from structlearn.reid.refine import refine_labels
from structlearn.reid.sampler import pk_epoch
from structlearn.reid.sicl import FusionHead, knn_loss, neighbour_clusters
from structlearn.train.augment import random_shift
from structlearn.utils.seed import seed_everything, torch_generator
from structlearn.utils.validation import check_choice, check_float, check_int

METHODS = ("spcl", "cluster-contrast", "cacl", "hcl", "mgce-hcl", "sicl")
# Which memory feeds the clustering (module docstring): CACL's M / M̃ / both; SiCL's M_mask / M_fus / both.
CLUSTER_ON = ("rgb", "gray", "both", "mask", "fused", "rgb+mask")
SICL_CLUSTER_ON = ("mask", "fused", "rgb+mask")
MEMORIES = ("instance", "centroid")  # SpCL's hybrid instance memory or Cluster-Contrast's centroids
# MGCE-HCL granularities: eps offsets around the base eps (spec §4.2: 0.5 … 0.7 around 0.6).
GRANULARITY_OFFSETS = (-0.1, -0.05, 0.0, 0.05, 0.1)


@dataclass(frozen=True)
class ReIDConfig:
    method: str = "cacl"
    epochs: int = 12
    iters_per_epoch: int = 50
    batch_ids: int = 8  # P
    instances: int = 4  # K
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    temperature: float = 0.05
    momentum: float = 0.2
    focal_gamma: float | None = None  # None: 2 for CACL (paper), 0 (cross-entropy) otherwise
    eps: float | None = None  # None: select_eps (most clusters) on the training distances
    eps_shift: float = 0.0  # added to the (selected) eps: a deliberately loose eps injects label noise
    agreement_power: float = 1.0  # MGCE-HCL: weights (agreeing granularities / G) ** p; 1 = the spec's
    reselect_eps: bool = False  # with eps=None: True re-selects every epoch; False: once, at epoch 1
    eps_gap: float = 0.02
    min_samples: int = 4
    k1: int = 20
    k2: int = 6
    gray_branch: bool = True
    inter_branch: bool = True
    refinement: bool = True
    allknn: int = 3  # SiCL: neighbour clusters reached by the curriculum (0: no neighbour loss)
    cluster_on: str = "rgb"  # memory clustered: "rgb" (papers, code); others are our extension
    memory: str | None = None  # None: the method's own (centroid for Cluster-Contrast, else instance)
    augment_shift: int = 2
    flip: bool = True
    backbone: ReIDNetConfig = field(default_factory=ReIDNetConfig)
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        for name in ("epochs", "iters_per_epoch", "batch_ids", "instances", "min_samples", "k1", "k2"):
            check_int(name, getattr(self, name), minimum=1)
        check_float("lr", self.lr, positive=True)
        check_float("weight_decay", self.weight_decay, nonnegative=True)
        check_float("temperature", self.temperature, positive=True)
        check_float("momentum", self.momentum, nonnegative=True, maximum=1.0)
        if self.focal_gamma is not None:
            check_float("focal_gamma", self.focal_gamma, nonnegative=True)
        if self.eps is not None:
            check_float("eps", self.eps, positive=True, maximum=1.0)
        check_float("eps_gap", self.eps_gap, nonnegative=True)
        check_float("agreement_power", self.agreement_power, positive=True)
        if abs(check_float("eps_shift", self.eps_shift)) > 0.5:
            raise ValueError(f"eps_shift must lie in [-0.5, 0.5], got {self.eps_shift}")
        check_int("augment_shift", self.augment_shift, minimum=0)
        check_int("allknn", self.allknn, minimum=0)
        check_int("seed", self.seed, minimum=0)
        check_choice("cluster_on", self.cluster_on, CLUSTER_ON)
        if self.memory is not None:
            check_choice("memory", self.memory, MEMORIES)
            allowed = {"cluster-contrast": ("centroid",), "spcl": MEMORIES, "cacl": MEMORIES}
            if self.memory not in allowed.get(self.method, ("instance",)):
                raise ValueError(
                    f"memory={self.memory!r} is not available for method={self.method!r} "
                    f"(centroid memory: cluster-contrast, spcl, cacl; instance memory: every method but "
                    f"cluster-contrast)"
                )
        if self.cluster_on in SICL_CLUSTER_ON and self.method != "sicl":
            raise ValueError(f"cluster_on={self.cluster_on!r} needs SiCL's memories (method='sicl')")
        if self.cluster_on in ("gray", "both") and not (self.method == "cacl" and self.gray_branch):
            raise ValueError(
                f"cluster_on={self.cluster_on!r} needs CACL's grayscale branch (method='cacl', "
                f"gray_branch=True), got method={self.method!r}, gray_branch={self.gray_branch}"
            )
        if not isinstance(self.backbone, ReIDNetConfig):
            raise ValueError(f"backbone must be a ReIDNetConfig, got {type(self.backbone).__name__}")

    @property
    def memory_kind(self) -> str:
        """The memory bank trained against: ``memory``, or the method's own when it is None."""
        if self.memory is not None:
            return self.memory
        return "centroid" if self.method == "cluster-contrast" else "instance"

    @property
    def gamma(self) -> float:
        if self.focal_gamma is not None:
            return self.focal_gamma
        return {"cacl": 2.0, "sicl": 4.0}.get(self.method, 0.0)

    def replace(self, **kw: Any) -> ReIDConfig:
        return dataclasses.replace(self, **kw)


@dataclass
class ReIDResult:
    """``pseudo_labels``: the last epoch's labels as the trainer trained on them (length of the training
    split; outliers are singleton classes, except Cluster-Contrast's dropped outliers, −1);
    ``label_history``: the labels of every epoch. ``final_gray``: mAP/R1/… of CACL's grayscale branch
    F′ on the grayscale query/gallery (None for methods without it)."""

    config: ReIDConfig
    history: list[dict[str, float]]
    final: dict[str, float]
    eps: float
    seconds: float
    model: ReIDNet
    pseudo_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    label_history: list[np.ndarray] = field(default_factory=list)
    final_gray: dict[str, float] | None = None


def _augment(x: torch.Tensor, cfg: ReIDConfig, g: torch.Generator) -> torch.Tensor:
    if cfg.flip:
        flip = torch.rand(len(x), generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return random_shift(x, cfg.augment_shift, g)


def _augment_views(
    x: torch.Tensor, sil: torch.Tensor, cfg: ReIDConfig, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """SiCL's two views: the official loader applies the RGB transform and the silhouette's (grayscale)
    transform separately (``CMC.py`` get_train_loader, ``preprocessor.py``), so each view gets its own
    flip and shift draw."""
    return _augment(x, cfg, g), _augment(sil, cfg, g)


def _gray_split(split: ReIDSplit) -> ReIDSplit:
    """The split with every image replaced by its grayscale view (as branch F′ sees it)."""
    return dataclasses.replace(split, images=to_gray(torch.from_numpy(split.images)).contiguous().numpy())


def _cluster_features(
    f1: torch.Tensor, f2: torch.Tensor | None, cluster_on: str, f3: torch.Tensor | None = None
) -> torch.Tensor:
    """Clustering input: the RGB branch's features (M, or fresh ones with a centroid memory), the second
    branch's (CACL's M̃, SiCL's M_mask), SiCL's fused ones (M_fus), or the first two together (unit vectors
    concatenated, cosine = mean of the two cosines)."""
    if cluster_on == "fused" and f3 is not None:
        return f3.clone()
    if cluster_on == "rgb" or f2 is None:
        return f1.clone()
    if cluster_on in ("gray", "mask"):
        return f2.clone()
    both = torch.cat([F.normalize(f1, dim=1), F.normalize(f2, dim=1)], 1)
    return both / 2**0.5


def _contiguous(labels: np.ndarray) -> np.ndarray:
    """Labels ≥ 0 renumbered 0..C−1 in order; −1 kept."""
    out = np.full_like(labels, -1)
    keep = labels >= 0
    out[keep] = np.unique(labels[keep], return_inverse=True)[1]
    return out


def _cluster(
    feats: torch.Tensor, cfg: ReIDConfig, eps: float | None, drop_outliers: bool
) -> tuple[np.ndarray, float, dict[str, float], np.ndarray | None]:
    D = jaccard_distance(feats.numpy(), cfg.k1, cfg.k2)
    if eps is None:
        eps = float(np.clip(select_eps(D, cfg.min_samples) + cfg.eps_shift, 0.01, 0.99))
    multi = None
    if cfg.method == "mgce-hcl":
        grid = tuple(float(np.clip(eps + o, 0.01, 0.99)) for o in GRANULARITY_OFFSETS)
        multi = granularity_labels(D, grid, cfg.min_samples)
    loose = DBSCAN(eps=eps, min_samples=cfg.min_samples, metric="precomputed").fit_predict(D)
    stats = {"n_clusters": float(loose.max() + 1), "outlier_frac": float((loose < 0).mean())}
    if cfg.method in ("cacl", "sicl") and cfg.refinement:  # SiCL: --cr in every official command
        tight_eps = max(eps - cfg.eps_gap, 1e-6)
        tight = DBSCAN(eps=tight_eps, min_samples=cfg.min_samples, metric="precomputed").fit_predict(D)
        labels = refine_labels(D, loose, tight)
        stats["refined_frac"] = float(((loose >= 0) & (labels > loose.max())).mean())
        if drop_outliers:  # centroid memory: removed members and outliers are dropped, not singletons
            labels = _contiguous(np.where(labels > loose.max(), -1, labels))
    else:
        labels = loose if drop_outliers else assign_outliers(loose, "singleton")
    return labels, eps, stats, multi


EpochHook = Callable[[int, dict[str, torch.Tensor]], None]


def _fresh_features(
    net: ReIDNet, net2: ReIDNet | None, images: torch.Tensor, gray_branch: bool
) -> dict[str, torch.Tensor]:
    """Features re-extracted by the current networks, what a centroid memory clusters: ``rgb``, and for
    CACL ``gray`` (F′ on the grayscale view, or on RGB without the gray branch)."""
    out = {"rgb": net.embed(images)}
    if net2 is not None:
        out["gray"] = net2.embed(to_gray(images) if gray_branch else images)
    return out


def _memory_views(
    mem1: InstanceMemory, mem2: InstanceMemory | None, mem3: InstanceMemory | None, method: str
) -> dict[str, torch.Tensor]:
    """Copies of the memories' features, named by what they hold (the diagnostic hook's argument)."""
    out = {"rgb": mem1.features.clone()}
    if mem2 is not None:
        out["mask" if method == "sicl" else "gray"] = mem2.features.clone()
    if mem3 is not None:
        out["fused"] = mem3.features.clone()
    return out


def train_reid(
    data: ReIDDataset, config: ReIDConfig | None = None, on_epoch: EpochHook | None = None
) -> ReIDResult:
    """Train one method on ``data.train`` without labels; evaluate on ``data.query``/``data.gallery``.

    ``on_epoch(e, memories)`` (diagnostics only; it changes nothing): called before the clustering of
    epoch e = 0 … epochs − 1 and once more after training (e = epochs) with copies of the memory features
    of the memory-based methods (keys ``rgb``, ``gray``/``mask``, ``fused``); a centroid memory
    (Cluster-Contrast) passes the re-extracted features it clusters (``rgb``, and ``gray`` for CACL).
    Time spent in the hook is left out of ``seconds``."""
    cfg = config or ReIDConfig()
    if not isinstance(data, ReIDDataset):
        raise ValueError(f"data must be a ReIDDataset, got {type(data).__name__}")
    if on_epoch is not None and not callable(on_epoch):
        raise ValueError(f"on_epoch must be callable or None, got {type(on_epoch).__name__}")
    # Data checks before any work (the CLI relies on it: a refused run writes nothing).
    if len(data.train) < 2:  # pseudo-labels cluster the training images; one cannot be clustered
        raise ValueError(f"data.train has {len(data.train)} image(s); training needs at least 2")
    if cfg.method == "sicl" and data.train.silhouettes is None:
        raise ValueError("SiCL needs silhouettes of the training images (ReIDSplit.silhouettes)")
    seed_everything(cfg.seed)
    g = torch_generator(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train = data.train
    images = torch.from_numpy(train.images)
    backbone = cfg.backbone
    if backbone.pooling is None:  # the method's own pooling; an explicit choice is kept
        backbone = dataclasses.replace(backbone, pooling="gem" if cfg.method == "cluster-contrast" else "avg")
    backbone = dataclasses.replace(backbone, in_channels=images.shape[1])
    net = ReIDNet(backbone)
    params = list(net.parameters())
    net2 = pred = fusion = mem3 = None
    sil = None
    if cfg.method in ("cacl", "sicl"):
        net2, pred = ReIDNet(backbone), Predictor(backbone.feature_dim)
        params += list(net2.parameters()) + list(pred.parameters())
    if cfg.method == "sicl":
        # The silhouette goes through the same pipeline as CACL's grayscale view (3 equal channels).
        sil = torch.from_numpy(train.silhouettes).expand(-1, images.shape[1], -1, -1).contiguous()
        fusion = FusionHead(backbone.feature_dim)
        params += list(fusion.parameters())
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
    centroid = cfg.memory_kind == "centroid"  # centroids rebuilt each epoch from re-extracted features
    cmem = cmem2 = None
    mem1 = InstanceMemory(
        net.embed(images), torch.zeros(len(images)), cfg.temperature, cfg.momentum, cfg.gamma
    )
    mem2 = None
    if net2 is not None:
        # CACL: both memories start from each branch's features of the plain RGB images (as the reference
        # code); SiCL: the mask memory from the silhouettes, the fusion memory from the RGB features.
        mem2 = InstanceMemory(
            net2.embed(images if sil is None else sil),
            torch.zeros(len(images)),
            cfg.temperature,
            cfg.momentum,
            cfg.gamma,
        )
    if fusion is not None:
        mem3 = InstanceMemory(
            mem1.features.clone(), torch.zeros(len(images)), cfg.temperature, cfg.momentum, cfg.gamma
        )
    eps = cfg.eps
    history: list[dict[str, float]] = []
    label_history: list[np.ndarray] = []
    t0 = time.perf_counter()
    hook_s = 0.0  # diagnostics: not part of the method's wall time
    bar = tqdm(range(cfg.epochs), desc=f"reid {cfg.method}", disable=not cfg.progress)
    for epoch in bar:
        fresh = _fresh_features(net, net2, images, cfg.gray_branch) if centroid else None
        if fresh is not None:
            feats, feats2 = fresh["rgb"], fresh.get("gray")
            cluster_in = _cluster_features(feats, feats2, cfg.cluster_on)
        else:
            f2 = None if mem2 is None else mem2.features
            f3 = None if mem3 is None else mem3.features
            cluster_in = _cluster_features(mem1.features, f2, cfg.cluster_on, f3)
        if on_epoch is not None:
            th = time.perf_counter()
            views = {k: v.clone() for k, v in fresh.items()} if fresh is not None else None
            on_epoch(epoch, views or _memory_views(mem1, mem2, mem3, cfg.method))
            hook_s += time.perf_counter() - th
        if cfg.eps is None and cfg.reselect_eps:
            eps = None
        labels, eps, stats, multi = _cluster(cluster_in, cfg, eps, drop_outliers=centroid)
        label_history.append(labels)
        lab_t = torch.from_numpy(labels)
        multi_t = None if multi is None else torch.from_numpy(multi)
        if centroid:
            kw = dict(temperature=cfg.temperature, momentum=cfg.momentum, gamma=cfg.gamma)
            cmem = ClusterMemory.from_features(feats, lab_t, **kw)
            cmem2 = None if feats2 is None else ClusterMemory.from_features(feats2, lab_t, **kw)
        else:
            for m in (mem1, mem2, mem3):
                if m is not None:
                    m.set_labels(lab_t)
        nb = nb_sim = None
        if mem3 is not None:
            n_nb = min(int(cfg.allknn / cfg.epochs * epoch), mem3.n_classes - 1)  # curriculum
            nb, nb_sim = neighbour_clusters(mem3.class_means(), n_nb)
        order = pk_epoch(labels, train.cams, cfg.instances, rng=rng)
        batch = cfg.batch_ids * cfg.instances
        losses = []
        for it in range(cfg.iters_per_epoch):
            s = (it * batch) % max(len(order) - batch + 1, 1)
            idx = torch.from_numpy(order[s : s + batch])
            if sil is None:
                x = _augment(images[idx], cfg, g)
            else:
                x, view_sil = _augment_views(images[idx], sil[idx], cfg, g)
            pooled, feat = net(x)
            if cmem is not None:
                loss = cmem(feat, lab_t[idx])
            else:
                loss = mem1(feat, idx)
            if cfg.method in ("hcl", "mgce-hcl"):
                w = None if multi_t is None else agreement_weights(multi_t, idx, cfg.agreement_power)
                loss = loss + instance_loss(feat, mem1.features, idx, lab_t, cfg.temperature, w)
            if fusion is not None and net2 is not None and mem2 is not None and mem3 is not None:
                _, feat2 = net2(view_sil)
                feat3 = fusion(feat.detach(), feat2.detach())
                y = lab_t[idx]
                loss = loss + mem2(feat2, idx) + mem3(feat3, idx)
                if nb is not None and nb.shape[1] > 0:
                    loss = loss + knn_loss(mem1.logits(feat), nb[y], nb_sim[y], g)
                    loss = loss + knn_loss(mem2.logits(feat2), nb[y], nb_sim[y], g)
                if cfg.inter_branch and pred is not None:
                    z = pred(pooled)
                    u2 = F.normalize(mem2.class_means()[y], dim=1)
                    loss = (
                        loss - (z * u2).sum(1).mean() - (z * F.normalize(feat2.detach(), dim=1)).sum(1).mean()
                    )
            elif net2 is not None and mem2 is not None and pred is not None:
                view2 = to_gray(x) if cfg.gray_branch else x
                _, feat2 = net2(view2)
                loss = loss + (mem2(feat2, idx) if cmem2 is None else cmem2(feat2, lab_t[idx]))
                if cfg.inter_branch:
                    z = pred(pooled)
                    f2 = F.normalize(feat2.detach(), dim=1)
                    # ũ_ω(i): the gray branch's cluster mean (member mean of M̃, or its centroid row)
                    u2 = mem2.class_means() if cmem2 is None else cmem2.features
                    u2 = F.normalize(u2[lab_t[idx]], dim=1)
                    loss = loss - (z * f2).sum(1).mean() - (z * u2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                if cmem is not None:
                    cmem.update(lab_t[idx], feat)
                    if cmem2 is not None:
                        cmem2.update(lab_t[idx], feat2)
                else:
                    mem1.update(idx, feat)
                    if mem2 is not None:
                        mem2.update(idx, feat2)
                    if mem3 is not None:
                        mem3.update(idx, feat3)
            losses.append(loss.detach())
        record = {"epoch": float(epoch + 1), "loss": float(torch.stack(losses).mean()), "eps": float(eps)}
        record.update(stats)
        clustered = labels >= 0
        record["pseudo_nmi"] = float(normalized_mutual_info_score(train.pids[clustered], labels[clustered]))
        record["pseudo_ari"] = float(adjusted_rand_score(train.pids[clustered], labels[clustered]))
        if len(np.unique(train.clothes)) > len(np.unique(train.pids)):  # outfits change: purity vs outfit
            record["pseudo_nmi_outfit"] = float(
                normalized_mutual_info_score(train.clothes[clustered], labels[clustered])
            )
        record.update(evaluate_model(net, data.query, data.gallery))
        history.append(record)
        bar.set_postfix(mAP=f"{record['mAP']:.3f}", R1=f"{record['R1']:.3f}")
    final = {k: v for k, v in history[-1].items() if k not in ("epoch", "loss")}
    seconds = time.perf_counter() - t0 - hook_s
    if on_epoch is not None:  # the state the next clustering would see; after timing
        last = _fresh_features(net, net2, images, cfg.gray_branch) if centroid else None
        on_epoch(cfg.epochs, last or _memory_views(mem1, mem2, mem3, cfg.method))
    final_gray = None
    if cfg.method == "cacl" and cfg.gray_branch and net2 is not None:  # after timing: a diagnostic
        final_gray = evaluate_model(net2, _gray_split(data.query), _gray_split(data.gallery))
    return ReIDResult(
        cfg, history, final, float(eps), seconds, net, label_history[-1], label_history, final_gray
    )
