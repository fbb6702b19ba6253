"""PRO-DSC: principled deep subspace clustering (Meng et al., ICLR 2025, arXiv 2503.17288).

A trunk and two row-normalised heads (:class:`~structlearn.cluster.methods.networks.TwoHeadNet`) give, for a
mini-batch of B points, the representation Z ∈ R^{B×d} and the cluster features Y ∈ R^{B×d}. With
self-expressive coefficients parameterised by the cluster head (paper eqs. (2)–(6); spec §3.3):

    G = YYᵀ,  S = sign(G),  P = B · Sinkhorn(|G|; η),  C = P − Diag(P),  A = ½(|C| + |C|ᵀ)
    L_TCR = −R(Z; ε) = −½ log det(I + d/(B ε²) ZᵀZ)                         (total coding rate)
    L_SE  = ½ ‖Zᵀ − Zᵀ(S ⊙ A)‖_F² / B                                        (self-expression)
    L_BD  = ‖A‖_[k] / B = tr(L W) / B,  L = Diag(A1) − A,  W = U_k U_kᵀ      (block diagonal)
    loss  = L_TCR + γ L_SE + β L_BD

The diagonal is removed *after* Sinkhorn and *before* symmetrisation (spec §3.6). The first
``warmup_steps`` minimise L_TCR over trunk + feature head only; then the feature head is copied into the
cluster head (MLC/CPP initialisation). ``half_iters=1`` reproduces the official configs, whose
"Sinkhorn" is one row update (a row softmax of |G|/η); ``half_iters=None`` with ``n_iters`` runs true
full Sinkhorn iterations. The coding-rate term is what prevents feature collapse (paper Thm. 1); it can
be switched off with ``tcr_weight=0`` for the ablation.

Labels of the training set come from the shared spectral step on an evaluation affinity of the cluster
features (``affinity``: ``"gram"``, ``"gram_sq"``, ``"topk"`` or ``"auto"``; see
:mod:`structlearn.cluster.graph.gram_affinity`), no Sinkhorn, diagonal kept, as in the official CLIP-regime
evaluation. The paper clusters |YYᵀ| (``"gram"``); ``"auto"`` (default) uses its entrywise square
|YYᵀ|∘|YYᵀ| (``"gram_sq"``) at every N when d ≤ 64, which labels imbalanced clusters better (module
docstring of :mod:`~structlearn.cluster.graph.gram_affinity`; issue 10). ``"self_expressive"`` (opt-in)
labels with the affinity A of the loss below, formed over the whole set (dense N×N): the row-normalised
coefficients keep small clusters apart (imbalanced unions of subspaces), but lose on many small balanced
ones, so it is not the default.
``predict`` (out-of-sample, no N×N object; our design — the paper re-clusters each new set):

- ``"subspace"`` (default): during ``fit`` each training cluster j gets an orthonormal basis U_j of its
  cluster-head features (uncentred SVD, rank at 95 % energy, at most ``subspace_max_dim``); a new point
  goes to argmax_j ‖U_jᵀ y‖², i.e. the nearest learned subspace. O(N·k·r·d) time, O(chunk) memory.
- ``"knn"``: weighted vote of the ``predict_k`` training points with the largest |yᵀy_i| (a sparse top-k
  affinity to the training set), O(N·N_train·d) time, O(chunk·N_train) memory.

:meth:`PRODSC.cluster_new` is the paper's own protocol (heads + a fresh spectral clustering of the new
set) with the same evaluation affinity as ``fit``, and serves as the reference against which
``predict``'s accuracy cost is measured.

Optimiser: SGD with momentum 0.9 (official) with two parameter groups — trunk + feature head (``lr``,
``weight_decay``) and cluster head (``lr_c``, ``weight_decay_c``) — or Adam with the same groups.

The parameters are declared once, by
:class:`~structlearn.cluster.methods.prodsc_config.PRODSCConfig` (with the presets);
the estimator's constructor is generated from it (see
:class:`~structlearn.cluster.methods.deep_base.DeepClusterEstimator`).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import TransformerMixin

from structlearn.cluster.graph.gram_affinity import GRAM_MAX_N, Labelling, label_cluster_features
from structlearn.cluster.graph.spectral import DENSE_MAX_N, spectral_clustering
from structlearn.cluster.methods.deep_base import (
    DeepClusterEstimator,
    epoch_batches,
    forward_chunks,
    row_chunks,
    run_steps,
    seeded_module,
    train_subset,
)
from structlearn.cluster.methods.networks import TwoHeadNet
from structlearn.cluster.methods.prodsc_config import (
    CPU_PRESETS,
    PAPER_PRESETS,
    SELF_EXPRESSIVE,
    PRODSCConfig,
)
from structlearn.cluster.objectives.coding_rate import coding_rate
from structlearn.cluster.objectives.regularizers import BlockDiagonal
from structlearn.cluster.objectives.sinkhorn import sinkhorn
from structlearn.utils.linalg import numerical_rank
from structlearn.utils.seed import rng_seed, torch_generator
from structlearn.utils.validation import check_choice


def self_expressive_affinity(G: torch.Tensor, cfg: PRODSCConfig) -> torch.Tensor:
    """A = ½(|C| + |C|ᵀ), C = P − Diag(P), P = B·Sinkhorn(|G|; η), for the Gram G = YYᵀ (eqs. (4)–(6)).

    The training loss's affinity; with ``affinity="self_expressive"`` also the labelling's, over the set.
    """
    P = sinkhorn(G.abs(), cfg.eta, cfg.n_iters, half_iters=cfg.half_iters)
    C = P - torch.diag(torch.diagonal(P))
    return 0.5 * (C.abs() + C.abs().T)


KNN_BLOCK_ENTRIES = 1 << 24  # entries of |Y Tᵀ| per block of predict_method="knn" (64 MB in float32)


def _check_dense_affinity(cfg: PRODSCConfig, n: int) -> None:
    """The dense labellings stop where the N×N matrix does not fit: "self_expressive" at DENSE_MAX_N
    points (memory and solver time), an explicit "gram" at GRAM_MAX_N (a dense float64 matrix and its
    CSR copy: ~2 GB at 10,000 points, ~100 GB at 70,000)."""
    limit = {SELF_EXPRESSIVE: DENSE_MAX_N, "gram": GRAM_MAX_N}.get(cfg.affinity)
    if limit is not None and n > limit:
        raise ValueError(
            f"affinity={cfg.affinity!r} forms a dense N×N affinity and is limited to {limit:,} points"
            f" (got {n:,}); use affinity='auto'"
        )


class PRODSC(TransformerMixin, DeepClusterEstimator):
    """PRO-DSC estimator: learns Z on a union of subspaces and an affinity |YYᵀ| from its cluster head.

    ``max_train_samples`` (default 10,000; None = every point): above it the network trains on a seeded
    random subset (``train_indices_``) and every point of X is then labelled by the trained heads and the
    spectral step — the out-of-sample protocol of the paper and of SENet, with training cost bounded in
    N. Trained on all points, the epoch-based schedule runs proportionally more steps and over-trains
    (UoS 10 × 4-dim, N = 50k, seed 0: 0.926 trained on all, 1.000 trained on 10k; issue 10).

    Fitted attributes: ``labels_`` (labels of every point of X), ``embedding_`` (Z of X, N×d),
    ``affinity_matrix_`` (sparse CSR evaluation affinity as clustered, i.e. after any connectivity
    repair; ``None`` for the implicit ``"gram_sq"`` affinity above 2,000 points), ``affinity_kind_`` (the
    affinity ``"auto"`` resolved to), ``n_components_`` (connected components of the labelling graph *before*
    repair; 1 for the complete dense and ``"gram_sq"`` affinities), ``subspace_bases_`` (per-cluster bases of
    the cluster-head features), ``history_`` (per-step losses), ``net_`` (the trained network),
    ``n_features_in_``, ``n_iter_`` (optimisation steps), ``train_seconds_`` (wall time of the
    optimisation loop), ``select_every_`` (the checkpoint interval used; None: no selection),
    ``selected_step_`` and ``selection_scores_`` ((step, eigengap) rows).

    Training length: ``n_epochs`` epochs of ⌊n / batch_size⌋ drop_last batches; on a set smaller than
    ``batch_size`` (one full batch) the steps after the warm-up are the ones a ``batch_size`` loader would
    make, ⌈(n_epochs − warmup_steps) · n / batch_size⌉, not one per epoch (:meth:`_training_steps`;
    wine, 178 points: 48 steps, ACC 0.86 → 0.96 over seeds 0–2; issue 10).

    ``select_every`` (label-free checkpoint selection, our addition): every this many steps after the
    warm-up (and at its end) the network is scored by the eigengap λ_k − λ_{k+1} of the normalised
    |YYᵀ| of a fixed sample of ``select_sample`` training rows (von Luxburg 2007, §8.3), and the
    best-scored state is restored after the last step (``selected_step_``, ``selection_scores_``).
    Long runs of the PRO-DSC objective split each cluster's features into tighter sub-groups: the
    eigengap falls and so does accuracy (UoS 2k, 600 → 3,000 steps: ACC 1.00 → 0.54; wine, 100 →
    1,000 steps: 0.88 → 0.66), while the objective keeps decreasing. ``select_every="auto"`` (opt-in)
    selects every 4 steps when the training set is one full batch scored whole (n ≤ ``batch_size`` and
    n ≤ ``select_sample``) and not otherwise; ``select_every_`` is the interval used (None: no
    selection). Where it helps and where it hurts: the config's comment.

    ``affinity`` picks the evaluation affinity ("auto", "gram", "gram_sq", "topk", "self_expressive";
    module docstring) and ``affinity_top_k`` the neighbours of the "topk" graph. ``eigen_solver``
    ("auto", "dense", "arpack", "lobpcg", …) is passed to
    :func:`~structlearn.cluster.graph.spectral.spectral_clustering` for the graph affinities; "gram_sq"
    solves its m×m eigenproblem exactly and does not use it.
    """

    _config_class = PRODSCConfig
    _init_defaults: ClassVar[dict[str, Any]] = {"n_clusters": 8, "random_state": None, "verbose": False}

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> PRODSC:
        """An estimator with a named preset: the paper's configs (§3.5) or our CPU ones (§10.4)."""
        presets = {**PAPER_PRESETS, **CPU_PRESETS}
        check_choice("preset", name, sorted(presets))
        return cls(**{**presets[name], **overrides})

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the network computes in float32
        return tags

    # ---------------------------------------------------------------- training
    def fit(self, X: Any, y: Any = None) -> PRODSC:
        """Train the network on X (or a ``max_train_samples`` subset of it), then label every point of X
        by spectral clustering on |YYᵀ|."""
        cfg: PRODSCConfig = self._validate_params()
        Xn = self._validate_X(X, reset=True)
        _check_dense_affinity(cfg, Xn.shape[0])  # before training, not after
        seed = rng_seed(self.random_state)
        device = torch.device(cfg.device)  # validated by the config
        Xall = torch.from_numpy(Xn).to(device)
        train_idx = train_subset(Xn.shape[0], cfg.max_train_samples, seed)
        self.train_indices_ = train_idx
        Xt = Xall[torch.from_numpy(train_idx).to(device)] if len(train_idx) < Xn.shape[0] else Xall
        n = Xt.shape[0]
        B = min(cfg.batch_size, n)
        warmup = cfg.warmup_steps if cfg.tcr_weight > 0 else 0
        total = self._training_steps(n, cfg.n_epochs, cfg.batch_size, warmup)
        if total <= warmup:
            raise ValueError(
                f"{total} training steps (n_epochs={cfg.n_epochs}, {n // B} batches per epoch) do not exceed"
                f" warmup_steps={warmup}; raise n_epochs or lower warmup_steps"
            )
        net = seeded_module(seed, lambda: TwoHeadNet(Xn.shape[1], cfg.hidden_dims, cfg.head_dim).to(device))
        opt = self._make_optimizer(net, cfg)
        # drop_last, as the official loader
        batches = epoch_batches(n, B, cfg.n_epochs, torch_generator(seed), device)
        bd = BlockDiagonal(cfg.n_clusters if cfg.n_clusters <= B else B, refresh_every=cfg.bd_refresh)
        full_batch = n == B
        every = self.select_every_ = cfg.selection_interval(n)
        if warmup == 0:
            net.copy_feature_head()
        # Label-free checkpoint selection: a fixed sample of training rows scored by the eigengap.
        sel = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(n)[: cfg.select_sample]))
        x_sel = Xt[sel.to(device)]
        scores: list[tuple[int, float]] = []
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None

        def step_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            xb = Xt[next(batches)]
            if step < warmup:
                Z, _ = net(xb)
                loss = -cfg.tcr_weight * coding_rate(Z, cfg.eps_sq)
                return loss, torch.stack([loss.detach(), loss.detach(), *torch.zeros(2, device=device)])
            # One projector per batch; with a fixed full batch it may be reused for bd_refresh steps.
            return self._loss(net, xb, cfg, bd, 0 if full_batch else step)

        def after_step(step: int) -> None:
            nonlocal best
            if step == warmup:
                net.copy_feature_head()
            if every is not None and step >= warmup and ((step - warmup) % every == 0 or step == total):
                gap = self._eigengap(net, x_sel, cfg.n_clusters)
                scores.append((step, gap))
                if best is None or gap > best[0]:
                    best = (gap, step, copy.deepcopy(net.state_dict()))

        net.train()
        t0 = time.perf_counter()
        history = run_steps(
            total, step_fn, opt, after_step=after_step, desc="PRO-DSC train", verbose=self.verbose
        )
        if best is not None:
            net.load_state_dict(best[2])
        self.selected_step_ = total if best is None else best[1]
        self.selection_scores_ = np.array(scores, dtype=np.float64).reshape(-1, 2)
        self.train_seconds_ = time.perf_counter() - t0
        net.eval()
        self.net_ = net
        self.n_iter_ = total
        self._seed = seed
        H = torch.stack(history).cpu().numpy()
        self.history_ = {"loss": H[:, 0], "tcr": H[:, 1], "self_expression": H[:, 2], "block_diag": H[:, 3]}
        Z, Y = forward_chunks(net, row_chunks(Xall))  # every point of X, trained on or not
        self.embedding_ = Z.cpu().numpy()
        lab = self._label(Y, cfg, seed)
        self.labels_ = lab.labels
        self.affinity_matrix_ = lab.affinity_matrix
        self.affinity_kind_ = lab.affinity
        self.n_components_ = lab.n_components
        self._fit_predictor(Y, cfg)
        return self

    @staticmethod
    def _training_steps(n: int, n_epochs: int, batch_size: int, warmup: int) -> int:
        """Optimisation steps of a fit on n training points (warm-up included).

        With n ≥ ``batch_size``: ``n_epochs`` × ⌊n / batch_size⌋ (drop_last batches), i.e. about
        n_epochs / batch_size steps per training point whatever n. Below ``batch_size`` the batch is the
        whole set and an epoch is one step, so the same n_epochs would make the steps per point grow as
        1/n and over-train small sets (wine, 178 points: 100 full-batch steps end at ACC 0.86, the
        clustering peaks 10–30 steps after the warm-up; issue 10). There the clustering phase gets the
        steps a ``batch_size`` loader would make for n points, ⌈(n_epochs − warmup) · n / batch_size⌉
        (at least one); the TCR warm-up, which does not cluster, keeps its ``warmup`` steps.
        """
        if n >= batch_size:
            return n_epochs * (n // batch_size)
        if n_epochs <= warmup:
            return n_epochs  # rejected by fit, with the usual message
        return warmup + math.ceil((n_epochs - warmup) * n / batch_size)  # ≥ 1 as n ≥ 1

    @staticmethod
    @torch.no_grad()
    def _eigengap(net: TwoHeadNet, x: torch.Tensor, k: int) -> float:
        """λ_k − λ_{k+1} of D^{-1/2}|YYᵀ|D^{-1/2} on the rows x (eigenvalues in decreasing order).

        The eigengap heuristic (von Luxburg 2007, §8.3): large when the affinity has k well-separated
        groups; it falls when training splits the cluster features into more, tighter groups.
        """
        net.eval()
        _, Y = net(x)
        net.train()
        G = (Y @ Y.T).abs_().double()
        r = G.sum(dim=1).clamp_min_(torch.finfo(torch.float64).tiny).rsqrt_()
        lam = torch.linalg.eigvalsh(G * r[:, None] * r[None, :])
        return float(lam[-k] - lam[-k - 1]) if lam.numel() > k else 0.0

    @staticmethod
    def _label(Y: torch.Tensor, cfg: PRODSCConfig, seed: int) -> Labelling:
        _check_dense_affinity(cfg, Y.shape[0])  # cluster_new labels sets fit never saw
        if cfg.affinity == SELF_EXPRESSIVE:
            # The affinity the loss makes block-diagonal, over the whole set (dense N×N, opt-in). Every
            # off-diagonal entry is positive, so the graph is connected.
            with torch.no_grad():
                A = self_expressive_affinity(Y @ Y.T, cfg)
            A_csr = sp.csr_matrix(A.cpu().numpy())
            labels = spectral_clustering(
                A_csr, cfg.n_clusters, n_init=cfg.n_init, solver=cfg.eigen_solver, random_state=seed
            )
            return Labelling(labels, SELF_EXPRESSIVE, A_csr, 1, 0)
        return label_cluster_features(
            Y,
            cfg.n_clusters,
            affinity=cfg.affinity,
            top_k=cfg.affinity_top_k,
            eigen_solver=cfg.eigen_solver,
            n_init=cfg.n_init,
            random_state=seed,
        )

    def _make_optimizer(self, net: TwoHeadNet, cfg: PRODSCConfig) -> torch.optim.Optimizer:
        lr_c = cfg.lr if cfg.lr_c is None else cfg.lr_c
        groups = [
            {
                "params": [*net.trunk.parameters(), *net.feature_head.parameters()],
                "lr": cfg.lr,
                "weight_decay": cfg.weight_decay,
            },
            {"params": list(net.cluster_head.parameters()), "lr": lr_c, "weight_decay": cfg.weight_decay_c},
        ]
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        return torch.optim.Adam(groups, lr=cfg.lr)

    def _loss(
        self, net: TwoHeadNet, xb: torch.Tensor, cfg: PRODSCConfig, bd: BlockDiagonal, key: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Total loss and the detached (total, L_TCR, L_SE, L_BD) for logging."""
        Z, Y = net(xb)
        B = Z.shape[0]
        G = Y @ Y.T
        A = self_expressive_affinity(G, cfg)
        # sign(G) re-injects the signs of the cluster-head Gram into the coefficients (official form).
        SA = torch.sign(G) * A
        l_se = 0.5 * (Z - SA @ Z).square().sum() / B
        l_bd = bd(A, key) / B
        l_tcr = -coding_rate(Z, cfg.eps_sq)
        loss = cfg.tcr_weight * l_tcr + cfg.gamma * l_se + cfg.beta * l_bd
        return loss, torch.stack([loss, l_tcr, l_se, l_bd]).detach()

    # ---------------------------------------------------------------- inference

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def _fit_predictor(self, Y: torch.Tensor, cfg: PRODSCConfig) -> None:
        """Per-cluster subspace bases of the cluster-head features (and the kNN anchors)."""
        k, d = cfg.n_clusters, Y.shape[1]
        labels = torch.from_numpy(self.labels_).to(Y.device)
        r_max = d if cfg.subspace_max_dim is None else min(cfg.subspace_max_dim, d)
        bases = torch.zeros(k, d, r_max, dtype=Y.dtype, device=Y.device)
        for j in range(k):  # k small SVDs, once per fit
            Yj = Y[labels == j]
            if Yj.shape[0] == 0:
                continue
            _, s, Vh = torch.linalg.svd(Yj, full_matrices=False)
            r = min(numerical_rank(s), r_max)
            bases[j, :, :r] = Vh[:r].T
        self.subspace_bases_ = bases
        self.train_cluster_features_ = Y

    def _heads(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(Z, Y) of validated new data, chunk by chunk (eval mode: BatchNorm uses running statistics)."""
        return forward_chunks(self.net_, self._new_data_chunks(X))

    def transform(self, X: Any) -> np.ndarray:
        """The learned representation Z (N × out_dim, unit rows) of new points."""
        return self._heads(X)[0].cpu().numpy()

    def cluster_features(self, X: Any) -> np.ndarray:
        """The cluster-head features Y (N × out_dim, unit rows), whose |YYᵀ| is the affinity."""
        return self._heads(X)[1].cpu().numpy()

    @torch.no_grad()
    def predict(self, X: Any) -> np.ndarray:
        """Training-cluster index for each new point, chunk by chunk (no N×N matrix, O(chunk) memory)."""
        chunks = self._new_data_chunks(X)
        return (
            forward_chunks(lambda xb: self._assign(self.net_(xb)[1]), chunks).cpu().numpy().astype(np.int64)
        )

    def _assign(self, Y: torch.Tensor) -> torch.Tensor:
        if self.predict_method == "knn":
            T = self.train_cluster_features_
            labels = torch.from_numpy(self.labels_).to(Y.device)
            rows = max(1, KNN_BLOCK_ENTRIES // T.shape[0])  # |Y Tᵀ| in blocks: 16,384 × 70,000 is 4.6 GB
            out = []
            for a in range(0, Y.shape[0], rows):
                w, j = torch.topk((Y[a : a + rows] @ T.T).abs_(), min(self.predict_k, T.shape[0]), dim=1)
                votes = torch.zeros(w.shape[0], self.n_clusters, dtype=Y.dtype, device=Y.device)
                out.append(votes.scatter_add_(1, labels[j], w).argmax(dim=1))
            return torch.cat(out)
        # ‖U_jᵀ y‖² for every cluster j: (n, d) × (k, d, r) → (n, k).
        proj = torch.einsum("nd,kdr->nkr", Y, self.subspace_bases_)
        return proj.square().sum(dim=2).argmax(dim=1)

    def cluster_new(self, X: Any) -> np.ndarray:
        """The paper's out-of-sample protocol: heads, then a fresh spectral clustering of the new set.

        Same evaluation affinity as ``fit`` (``affinity``; ``"auto"`` resolved for the new set's size).
        Labels are a new clustering (their numbering is unrelated to ``labels_``).
        """
        return self._label(self._heads(X)[1], self._config(), self._seed).labels
