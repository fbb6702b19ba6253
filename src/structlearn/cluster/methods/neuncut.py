"""NeuNcut: neural normalised cut (He et al., Pattern Recognition 2025, arXiv 2503.09260).

Spectral clustering without an eigendecomposition: a network g_θ maps a point to membership logits and
P = softmax(g_θ(x)) ∈ Δ^k (paper eq. (6)). It is trained by mini-batch SGD on the relaxed normalised
cut of the batch affinity W with the orthogonality penalty (eqs. (7)–(8); see
:mod:`structlearn.cluster.objectives.ncut`):

    min_θ  tr(Hᵀ L H) + (γ/2) ‖Hᵀ D H − I_k‖_F / k,   H = P Diag(dᵀP)^{−1/2},  L = D − W.

Unseen points are labelled by argmax_j g_θ(x)_j — linear in N, no N×N object, done in chunks.

Architecture and optimiser as the official code: MLP D → 512 → 512 (ReLU) → k, Kaiming-uniform hidden
layers, Xavier output layer; Adam (lr 5e-3, weight decay 1e-4) with cosine annealing; batch 1,000;
γ = 80; the loss is the paper's (non-squared Frobenius penalty) unchanged.

Deviations (issue 10, defect 3: from a random initialisation the loss stalled at a relaxed-Ncut value
far above that of spectral clustering's labels on the same graph — UoS Ncut 2.6 vs 0.02, digits 1.2 vs
0.39 — and the official σ = 3 kernel is nearly flat on unit rows, spec §4.4):

* ``affinity="knn"`` (default): W is the symmetric 0/1 ``n_neighbors``-NN graph of the *training set*
  (the graph of :class:`~structlearn.cluster.methods.baselines.SpectralKNN`), built once, sparse; the loss
  costs O(nnz) per step. When N > ``batch_size`` a batch is the endpoints of B/2 edges drawn ∝
  weight, paired (:class:`EdgeSampler`): its loss estimates the relaxed Ncut of the whole graph. (A
  uniform batch of B out of N points keeps only ≈ B/N of each point's edges; a batch of seed points
  plus their neighbours, with the induced subgraph as W, gives the added neighbours a fraction of
  their true degree — trained from a perfect initialisation it drifted to ACC 0.93–0.98 on 10k
  points of ten subspaces, where edge batches stay at 1.00.) ``affinity="batch"`` is the former per-batch
  Gaussian kernel (``sigma``, in-batch kNN ``n_neighbors``; ``sigma=3.0, n_neighbors=None`` = official).
* ``init="diffusion"`` (default): the network is first fitted (100 cross-entropy steps) to k-means
  labels of a signal diffused over the graph, Z ← ½(Z + D⁻¹AZ) t times — no eigendecomposition,
  O(t·nnz·D). Two signals are diffused: the features (their top 64 principal axes) and max(16, 2k)
  seeded random columns (as power-iteration clustering does; since stop 22 — feature diffusion
  cannot separate clusters whose feature means coincide: two concentric rings, ACC 0.50, and it
  reached ten 1,000-point subspaces only at t > 200, random columns at t = 100). The number of steps
  and the signal (``diffusion_source_``) are chosen label-free, *before* training, as those whose
  k-means labels have the lowest hard Ncut on the training graph (an empty cluster counts 1, so
  labellings that drop a cluster are not preferred). ``diffusion_steps="auto"`` (default) doubles t
  from 25 up to at least 2√N, then while the Ncut of either signal keeps falling (three doublings of
  patience per signal; a zero Ncut ends it; at most 12,800 steps): the steps a random walk needs to
  average over a cluster grow with the cluster's size (ten 4-dim subspaces, diffused features: t = 200
  suffices at N = 2,000, t = 400 at 10,000, t = 1,600 at 50,000,
  where t ≤ 100 gives ACC 0.24 and an Ncut that *rises* from t = 25 to 100 — hence the floor before
  patience counts), while on data whose clusters touch, too many steps merge them (digits: Ncut and
  ACC best at t = 25, kept by the lowest-Ncut choice). A tuple of
  step counts is searched as given. ``n_init`` training runs (network seeds) start from the chosen
  labels; the one whose hard labels have the lowest Ncut is kept. ``init="random"`` is the paper's
  start. ``init="spectral"``: the same warm start from the labels of the shared spectral step on the
  same graph (an eigendecomposition, the step NeuNcut exists to avoid; for users who want spectral
  clustering's partition with NeuNcut's linear-time ``predict``). Measured (issue 10): on Fashion-MNIST
  70k scattering features the diffusion start ends at a higher hard Ncut than spectral clustering's
  labels (0.313 vs 0.291, ACC 0.607 vs 0.640, seed 0); from spectral clustering's labels training
  kept their Ncut there (20k subset: 0.364 → 0.362) but raised it on digits (0.534 → 0.53–0.62, seeds
  0–2) — the relaxed-Ncut SGD does not find the spectral partition by itself, nor always hold it.
  On digits the spectral labels have the lower Ncut (0.534 vs 0.593) but the lower accuracy (0.75 vs
  0.84), so neither start is better everywhere and ``"diffusion"`` stays the default.
* Start against end (default, label-free; since stop 22): the hard Ncut of the training labels on the
  training graph is scored at the start and after the last step, and the lower-Ncut state is kept
  (``selected_step_`` 0 or the last step, ``selection_scores_``) — training never ends above its start
  in the objective it relaxes. Two moons (600 points, k = 2): the start cuts the kNN graph into its two
  components (Ncut 0, ACC 1) and the relaxed-Ncut training moved boundary points across (Ncut 0.007 /
  0.041, ACC 0.94 / 0.69; seeds 0 and 2); the non-squared orthogonality penalty keeps a gradient of
  constant size near the optimum.
* ``select_every`` (opt-in, label-free): the same score also every this many steps, and the lowest-Ncut
  state is restored. Measured (3 seeds, 5-step checkpoints; docs/deep_clustering.md): with
  ``init="spectral"`` it holds spectral clustering's partition (digits 0.739 → 0.749, SpectralKNN
  0.751); from the diffusion start it mostly keeps the start, which is not always the more accurate
  state (wine 0.923 → 0.906), so it is not the default.
* Raw-scale features (issue 10, held-out check on the raw scikit-learn sets): the network's input is
  x / s with s the training set's RMS row norm (``input_scale_``; exactly 1 when within 1 % of 1, so
  unit-row features train as before), a fixed first layer of ``net_``. The graph is built on x
  unchanged. Without it Wine (s ≈ 820) and breast_cancer (s ≈ 1,300) ended with one cluster on every
  seed and Iris (s ≈ 8) with two on seed 0. A run whose trained labels leave more clusters empty than
  its start did keeps the start (``selected_step_ = 0``, ConvergenceWarning): a cluster whose softmax
  saturates at 0 gets no gradient and cannot return.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from structlearn.cluster.graph.affinity import check_neighbors, knn_graph
from structlearn.cluster.graph.spectral import spectral_labels
from structlearn.cluster.methods.base import check_layer_widths
from structlearn.cluster.methods.deep_base import (
    DeepClusterEstimator,
    epoch_batches,
    forward_chunks,
    row_chunks,
    run_steps,
    seeded_module,
    train_subset,
)
from structlearn.cluster.methods.networks import InputScale, input_scale, relu_mlp
from structlearn.cluster.methods.neuncut_init import pretrain, select_diffusion, torch_sparse
from structlearn.cluster.objectives.ncut import gaussian_affinity, hard_ncut, ncut_loss
from structlearn.utils.seed import rng_seed, torch_generator
from structlearn.utils.validation import check_choice, check_device, check_float, check_int


@dataclass(frozen=True)
class NeuNcutConfig:
    """Validated hyper-parameters of one :class:`NeuNcut` fit (built from the estimator's params)."""

    n_clusters: int
    hidden_dims: tuple[int, ...] = (512, 512)
    affinity: str = "knn"
    n_init: int = 1
    init: str = "diffusion"
    diffusion_steps: tuple[int, ...] | str = "auto"
    gamma: float = 80.0
    sigma: float | str = "median"
    n_neighbors: int | None = 10
    batch_size: int = 1000
    n_epochs: int = 100
    lr: float = 5e-3
    weight_decay: float = 1e-4
    select_every: int | None = None
    max_train_samples: int | None = 20_000
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_int("n_clusters", self.n_clusters, minimum=1)
        check_layer_widths(self.hidden_dims)
        check_choice("affinity", self.affinity, ["knn", "batch"])
        check_int("n_init", self.n_init, minimum=1)
        check_choice("init", self.init, ["diffusion", "spectral", "random"])
        if isinstance(self.diffusion_steps, int | np.integer) and not isinstance(self.diffusion_steps, bool):
            object.__setattr__(self, "diffusion_steps", (int(self.diffusion_steps),))
        if isinstance(self.diffusion_steps, str):
            if self.diffusion_steps != "auto":
                raise ValueError(
                    "diffusion_steps must be 'auto', an int or a sequence of ints, "
                    f"got {self.diffusion_steps!r}"
                )
            return self._check_rest()
        try:
            object.__setattr__(self, "diffusion_steps", tuple(self.diffusion_steps))
        except TypeError:
            raise ValueError(
                f"diffusion_steps must be an int or a sequence of ints, got {self.diffusion_steps!r}"
            ) from None
        if len(self.diffusion_steps) == 0:
            raise ValueError("diffusion_steps must list at least one number of steps")
        for i, t in enumerate(self.diffusion_steps):
            check_int(f"diffusion_steps[{i}]", t, minimum=1)
        self._check_rest()

    def _check_rest(self) -> None:
        check_float("gamma", self.gamma, nonnegative=True)
        if isinstance(self.sigma, str):
            if self.sigma != "median":
                raise ValueError(f"unknown sigma {self.sigma!r}; give a positive number or 'median'")
        else:
            check_float("sigma", self.sigma, positive=True)
        if self.n_neighbors is not None:
            check_int("n_neighbors", self.n_neighbors, minimum=1)
        if self.affinity == "knn" and (self.sigma != "median" or self.n_neighbors is None):
            # The kNN graph is 0/1 and needs a neighbour count: the official kernel is affinity="batch".
            warnings.warn(
                "sigma and n_neighbors=None shape the per-batch Gaussian kernel of affinity='batch' only; "
                "with affinity='knn' (the default) sigma is unused and the graph keeps 10 neighbours",
                UserWarning,
                stacklevel=5,
            )
        check_int("batch_size", self.batch_size, minimum=2)
        check_int("n_epochs", self.n_epochs, minimum=1)
        check_float("lr", self.lr, positive=True)
        check_float("weight_decay", self.weight_decay, nonnegative=True)
        if self.select_every is not None:
            check_int("select_every", self.select_every, minimum=1)
        if self.max_train_samples is not None:
            check_int("max_train_samples", self.max_train_samples, minimum=2)
            if self.max_train_samples < self.n_clusters:  # else training fails late, or deep in k-means
                raise ValueError(
                    f"max_train_samples={self.max_train_samples} is below n_clusters={self.n_clusters}"
                )
        check_device("device", self.device)


def membership_mlp(
    in_dim: int, hidden_dims: Sequence[int], n_clusters: int, scale: float = 1.0
) -> nn.Sequential:
    """[x / scale →] D → hidden … (ReLU) → k logits (:func:`~structlearn.cluster.methods.networks.relu_mlp`;
    the input division is a fixed :class:`~structlearn.cluster.methods.networks.InputScale`)."""
    net = relu_mlp(in_dim, hidden_dims, n_clusters)
    return net if scale == 1.0 else nn.Sequential(InputScale(scale), *net)


class EdgeSampler:
    """Batches for the relaxed Ncut of the *whole* graph A: the endpoints of ⌊B/2⌋ edges drawn with
    probability ∝ weight, and W = the matching that pairs each edge's two endpoints.

    Every term of the loss is a degree-weighted node sum or a weighted edge sum of the full graph:
    vol = dᵀP, HᵀDH ∝ PᵀDP = Σᵢ dᵢ pᵢpᵢᵀ, tr(HᵀWH) ∝ Σᵢⱼ wᵢⱼ pᵢᵀpⱼ (with diagonal volume scaling).
    An endpoint of an edge drawn ∝ weight is a node drawn ∝ degree, so on this batch (every row has
    in-batch degree 1) each of those sums is the full-graph sum times the same factor 2m/Σd, which
    cancels in H = P diag(vol)^{−1/2}: the batch loss estimates the full loss (a ratio estimator,
    consistent in m).

    The edge list, the weights' cumulative distribution and the matching W (the same for every batch)
    are built once: a draw costs O(m log nnz), not O(nnz) (10 % of a default NeuNcut step at 20,000
    points). The draws are those of ``rng.choice(nnz, m, p=w/Σw)`` (same CDF, same uniforms).
    """

    def __init__(self, A: sp.spmatrix, batch_size: int) -> None:
        C = A.tocoo()
        self.row, self.col, self.nnz = C.row.astype(np.int64), C.col.astype(np.int64), C.nnz
        self.m = max(1, batch_size // 2)
        w = C.data.astype(np.float64)
        self.cdf: np.ndarray | None = None
        if not np.all(w == w[0]):
            cdf = (w / w.sum()).cumsum()
            self.cdf = cdf / cdf[-1]
        a = np.arange(2 * self.m)
        self.W = sp.csr_matrix((np.ones(2 * self.m, dtype=np.float32), (a, a ^ 1)), shape=(2 * self.m,) * 2)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Row indices into A of one batch, length 2m (repeats allowed), pairs adjacent."""
        if self.cdf is None:
            e = rng.integers(0, self.nnz, size=self.m)
        else:
            e = self.cdf.searchsorted(rng.random(self.m), side="right")
        idx = np.empty(2 * self.m, dtype=np.int64)
        idx[0::2], idx[1::2] = self.row[e], self.col[e]
        return idx


class NeuNcut(DeepClusterEstimator):
    """Neural normalised cut: memberships P = softmax(MLP(x)) trained on the relaxed Ncut of batches.

    ``max_train_samples`` (default 20,000; None = every point): above it the network trains on a seeded
    random subset of that size and every point of X is labelled by argmax (the paper's Fashion-MNIST
    protocol, 20k of 70k); the graph, the start and the selection then concern the subset only.

    Fitted attributes: ``labels_`` (argmax on X), ``train_indices_`` (the rows trained on),
    ``net_`` (the MLP, eval mode),
    ``history_`` (per-step total / spectral / orthogonality losses), ``n_features_in_``, ``n_iter_``,
    ``train_seconds_`` (wall time of all runs), ``affinity_matrix_`` (the kNN graph of the training rows,
    CSR, or None), ``restart_scores_`` (hard Ncut of each run's training labels on that graph; the lowest
    is kept),
    ``diffusion_steps_`` (the chosen t, None unless ``init="diffusion"``), ``diffusion_scores_`` ({t: the
    lower hard Ncut of its two signals' k-means labels}) and ``init_ncut_`` (hard Ncut of the warm-start
    labels; None for ``init="random"``), ``diffusion_source_`` ("features" or "random": the diffused
    signal the start came from; None unless ``init="diffusion"``), ``selected_step_`` and
    ``selection_scores_`` ((step, hard Ncut) rows of the checkpoints: start and end, plus every
    ``select_every`` steps; empty without a graph), so a run can be checked against its start without
    labels.
    """

    _config_class = NeuNcutConfig
    _init_defaults: ClassVar[dict[str, Any]] = {"n_clusters": 8, "random_state": None, "verbose": False}

    def fit(self, X: Any, y: Any = None) -> NeuNcut:
        """Train the membership network on mini-batch affinities of X; ``labels_`` = argmax on X."""
        cfg: NeuNcutConfig = self._validate_params()
        Xall = self._validate_X(X, reset=True)
        seed = rng_seed(self.random_state)
        device = torch.device(cfg.device)
        # Above max_train_samples the network trains on a random subset (the paper's protocol: 20k of
        # Fashion-MNIST's 70k) and labels every point by argmax; everything below sees only the subset.
        self.train_indices_ = train_subset(Xall.shape[0], cfg.max_train_samples, seed)
        subset = len(self.train_indices_) < Xall.shape[0]
        Xn = Xall[self.train_indices_] if subset else Xall
        n = Xn.shape[0]
        Xt = torch.from_numpy(Xn).to(device)
        # The network sees x / s (s = the RMS row norm; 1 for unit-scale rows), the graph the raw x.
        self.input_scale_ = input_scale(Xt)
        # The training-set kNN graph: the loss's affinity (affinity="knn"), the diffusion initialisation
        # and the label-free selection among restarts all use it.
        G = None
        if cfg.affinity == "knn" or cfg.init != "random" or cfg.select_every is not None:
            # n_neighbors=None (the official batch kernel) still needs this graph: 10, fewer on tiny sets.
            k = min(10, n - 1) if cfg.n_neighbors is None else check_neighbors(cfg.n_neighbors, n, subset)
            G = knn_graph(Xn, k)
        self.affinity_matrix_ = G
        A = G if cfg.affinity == "knn" else None
        best: tuple[float, Any] | None = None
        scores = []
        t0 = time.perf_counter()
        init_labels = None
        self.diffusion_steps_, self.diffusion_scores_, self.diffusion_source_ = None, {}, None
        if cfg.init == "diffusion":
            t, init_labels, ladder, source = select_diffusion(
                G, Xn, cfg.n_clusters, cfg.diffusion_steps, seed, device
            )
            self.diffusion_steps_, self.diffusion_scores_, self.diffusion_source_ = t, ladder, source
        elif cfg.init == "spectral":  # SpectralKNN's labels: the shared spectral step, same graph
            init_labels = spectral_labels(G, cfg.n_clusters, None, 10, "auto", seed, norm="degree")
        self.init_ncut_ = None if init_labels is None else hard_ncut(G, init_labels, cfg.n_clusters)
        for r in range(cfg.n_init):
            run = self._fit_once(cfg, Xt, A, G, seed + r, device, init_labels)
            scores.append(run[0])
            if best is None or run[0] < best[0]:
                best = run
        self.restart_scores_ = np.asarray(scores)
        self.train_seconds_ = time.perf_counter() - t0
        _, net, history, labels, self.selection_scores_, self.selected_step_ = best  # type: ignore[misc]
        self.net_ = net
        self.n_iter_ = len(history)
        H = torch.stack(history).cpu().numpy()
        self.history_ = {"loss": H[:, 0], "spectral": H[:, 1], "orthogonality": H[:, 2]}
        self.labels_ = self._argmax(row_chunks(torch.from_numpy(Xall).to(device))) if subset else labels
        return self

    def _fit_once(
        self,
        cfg: NeuNcutConfig,
        Xt: torch.Tensor,
        A: sp.csr_matrix | None,
        G: sp.csr_matrix | None,
        seed: int,
        device: torch.device,
        init_labels: np.ndarray | None,
    ) -> tuple[float, nn.Module, list[torch.Tensor], np.ndarray, np.ndarray, int]:
        """One training run from one initialisation: (selection score, net, history, training labels,
        checkpoint (step, hard Ncut) rows, the step whose state was kept)."""
        n = Xt.shape[0]
        B = min(cfg.batch_size, n)
        scale = self.input_scale_
        net = seeded_module(
            seed, lambda: membership_mlp(Xt.shape[1], cfg.hidden_dims, cfg.n_clusters, scale).to(device)
        )
        if init_labels is not None:
            pretrain(net, Xt, torch.from_numpy(init_labels).to(device), B, cfg.lr, seed)
        self.net_ = net  # _argmax reads it
        net.eval()
        start = (copy.deepcopy(net.state_dict()), self._argmax(row_chunks(Xt)))
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        per_epoch = max(1, n // B)  # drop_last: every batch has the same size, hence comparable losses
        total = cfg.n_epochs * per_epoch
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        rng = np.random.default_rng(seed)
        full_batch = n == B
        edges = None if A is None or full_batch else EdgeSampler(A, B)  # built once, sampled every step
        W_edges = None if edges is None else torch_sparse(edges.W, device)
        # Uniform batches (the per-batch kernel of affinity="batch"), reshuffled every epoch.
        batches = epoch_batches(n, B, cfg.n_epochs, torch_generator(seed), device)
        W_full = None
        if full_batch:  # the affinity does not depend on θ: built once
            if A is not None:
                W_full = torch_sparse(A, device)
            else:
                W_full = gaussian_affinity(Xt, cfg.sigma, cfg.n_neighbors)

        def step_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            if full_batch:
                xb, W = Xt, W_full
            elif edges is not None:
                xb, W = Xt[torch.from_numpy(edges.sample(rng)).to(device)], W_edges
            else:
                xb = Xt[next(batches)]
                W = gaussian_affinity(xb, cfg.sigma, cfg.n_neighbors)
            out = ncut_loss(W, torch.softmax(net(xb), dim=1), cfg.gamma)
            return out.total, torch.stack([out.total, out.spectral, out.orthogonality]).detach()

        # Label-free checkpoint selection: (hard Ncut on the training graph, step, state, labels). Without
        # select_every the start and the end still compete (the graph is there whenever it is needed).
        every = cfg.select_every if cfg.select_every is not None or G is None else total
        best: tuple[float, int, dict[str, torch.Tensor], np.ndarray] | None = None
        selection: list[tuple[int, float]] = []

        def after_step(step: int) -> None:
            nonlocal best
            if every is None or (step % every and step != total):
                return
            if step == 0:  # the start: its state and labels were taken above
                state, labels = start
            else:
                net.eval()
                labels = self._argmax(row_chunks(Xt))
                net.train()
                state = None
            score = hard_ncut(G, labels, cfg.n_clusters)
            selection.append((step, score))
            end_used[0] = np.unique(labels).size  # clusters used by the latest checkpoint
            if best is None or score < best[0]:
                best = (score, step, state if state is not None else copy.deepcopy(net.state_dict()), labels)

        end_used = [0]
        after_step(0)  # the start (warm or random) competes too
        net.train()
        history = run_steps(
            total,
            step_fn,
            opt,
            scheduler=sched,
            after_step=after_step,
            desc="NeuNcut train",
            verbose=self.verbose,
        )
        net.eval()
        rows = np.array(selection, dtype=np.float64).reshape(-1, 2)
        if best is not None:
            score, step, state, labels = best
            net.load_state_dict(state)
        else:
            step, labels = total, self._argmax(row_chunks(Xt))
        n_start = np.unique(start[1]).size
        # The selection would keep the start anyway (an empty cluster scores 1), but say why.
        n_used = end_used[0] if every is not None else np.unique(labels).size
        if n_used < n_start:
            # A cluster whose softmax saturates at 0 gets no gradient and never returns (raw Iris,
            # seed 0: the first Adam step emptied one, the loss then sat at the penalty γ/(2k) for
            # 99 steps). Ending with fewer clusters than the start had is never kept.
            warnings.warn(
                f"NeuNcut: training left {n_used} of the start's {n_start} clusters non-empty;"
                " keeping the start"
                " (scale the features, lower lr, or try another random_state)",
                ConvergenceWarning,
                stacklevel=3,
            )
            net.load_state_dict(start[0])
            step, labels = 0, start[1]
        if best is not None and step != 0:
            return score, net, history, labels, rows, step
        if G is not None:  # label-free: Ncut of the hard labels on the training graph
            score = hard_ncut(G, labels, cfg.n_clusters)
        else:
            score = float(torch.stack(history[-per_epoch:])[:, 0].mean())
        return score, net, history, labels, rows, step

    def _chunks(self, X: Any) -> Iterable[torch.Tensor]:
        return self._new_data_chunks(X)

    def _argmax(self, chunks: Iterable[torch.Tensor]) -> np.ndarray:
        return forward_chunks(lambda xb: self.net_(xb).argmax(dim=1), chunks).cpu().numpy().astype(np.int64)

    def predict(self, X: Any) -> np.ndarray:
        """argmax of the membership logits, chunk by chunk: time linear in N, O(chunk) working memory."""
        return self._argmax(self._chunks(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Soft memberships P = softmax(g_θ(x)) (N × k)."""
        return forward_chunks(lambda xb: torch.softmax(self.net_(xb), dim=1), self._chunks(X)).cpu().numpy()
