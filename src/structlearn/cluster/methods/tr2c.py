"""TR2C: Temporal Rate Reduction Clustering for human motion segmentation (arXiv 2506.21249).

One sequence of T frames X ∈ R^{T×D} (frames in order) is segmented into K motions. A two-head network
(:class:`~structlearn.cluster.methods.networks.TwoHeadNet`) maps each frame to a unit-norm representation z_t
(feature head) and a unit-norm cluster code y_t (cluster head). With Z ∈ R^{T×d} (rows z_t) and the
membership Γ = Sinkhorn(|YYᵀ|; η), whose rows Γ_j sum to 1, the training objective is

    min  −ρ(Z; ε) + λ₁ ρ^c(Z, ε | Γ) + (λ₂ / T) tr(Zᵀ L_t Z)

    ρ(Z; ε)       = ½ log det(I_d + d/(T ε²) ZᵀZ)                     (total coding rate)
    ρ^c(Z, ε | Γ) = Σ_j 1/(2T) log det(I_d + d/ε² Zᵀ Diag(Γ_j) Z)     (compression under Γ, MLC form)
    tr(Zᵀ L_t Z)  = Σ_{0<|i−j|≤s} ‖z_i − z_j‖² / 2                       (temporal Laplacian, window s)

(the paper writes Z ∈ R^{d×T} and tr(Z L_t Zᵀ); the λ₂/T scaling follows the spec's CPU plan).
ρ keeps the representation from collapsing (the temporal term alone over-smooths, like GNN
over-smoothing), ρ^c compresses the frames Γ groups together onto low-dimensional subspaces, and the
temporal term ties frames within the window. Labels: the shared spectral step on the learned affinity.

Implementation choices (our inference where the paper is silent; see docs/tr2c.md):

- Warm-up: the first ``warmup_iters`` steps (default 10 % of ``n_iters``) minimise −ρ(Z) only, then
  the feature head is copied into the cluster head, as in PRO-DSC/CPP (same first author); that TR2C
  does this is our inference.
- ρ^c needs one d×d log-det per row of Γ (T per step). With ``rate_rows`` > 0 each step uses that many
  random rows of Γ and rescales by T/rows — an unbiased estimate of the sum. Keep d small (default 32).
- Optimiser: Adam (the paper's optimiser is unverified); one full-sequence batch per step up to
  ``max_frames`` frames (the paper: the whole video is one batch; 500 iterations).
- Affinity: A = ½(Γ + Γᵀ) without its diagonal, plus ``temporal_affinity`` × the temporal graph with
  rows scaled to sum to 1 (so it carries that fraction of Γ's row mass); ``temporal_affinity=0`` is
  spectral clustering on Γ alone.
- Memory bound: the dense T×T Sinkhorn (training and inference) is used up to ``max_frames`` frames
  (default 2,000: a few T² float32 buffers, ≈ 16 MB each, plus the autograd tape). Above it, each step
  trains on ``batch_windows`` random contiguous windows of ``window_len`` frames (the temporal term
  stays within a window), and the affinity keeps each frame's ``top_k`` largest |y_iᵀy_j|, computed in
  row blocks, as the kernel exp((|y_iᵀy_j| − 1)/η) balanced by a sparse Sinkhorn — memory
  O(T·top_k + block·T) instead of O(T²).
- Optional post-processing ``min_segment`` merges segments shorter than that many frames into a
  neighbour (off by default; ``labels_raw_`` keeps the spectral-step labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from structlearn.cluster.graph.affinity import topk_blockwise
from structlearn.cluster.graph.spectral import check_eigen_solver, spectral_labels
from structlearn.cluster.graph.temporal import temporal_adjacency, temporal_smoothness
from structlearn.cluster.methods.base import check_layer_widths
from structlearn.cluster.methods.deep_base import (
    DeepClusterEstimator,
    forward_chunks,
    row_chunks,
    run_steps,
    seeded_module,
)
from structlearn.cluster.methods.networks import TwoHeadNet
from structlearn.cluster.objectives.coding_rate import coding_rate, compression_rate
from structlearn.cluster.objectives.sinkhorn import sinkhorn
from structlearn.cluster.segmentation import remove_short_segments
from structlearn.utils.seed import rng_seed
from structlearn.utils.validation import check_device, check_float, check_int


@dataclass(frozen=True)
class TR2CConfig:
    """Hyper-parameters of :class:`TR2C` (defaults: spec §10.5 CPU plan; paper values unverified)."""

    n_clusters: int = 2
    window: int = 2  # s
    lambda1: float = 1.0  # weight of ρ^c
    lambda2: float = 10.0  # weight of the temporal term (per frame)
    use_rate: bool = True  # −ρ term; False is the paper's "no ρ" ablation
    n_iters: int = 500
    warmup_iters: int | None = None  # None: 10 % of n_iters
    eta: float = 0.1
    sinkhorn_iters: int = 5
    eps_sq: float = 0.1
    hidden_dims: tuple[int, ...] = (256, 256)
    out_dim: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    rate_rows: int = 256  # rows of Γ per step for ρ^c; 0 = all T rows
    normalize: bool = True  # centre the frames and scale each to unit norm
    temporal_affinity: float = 0.0
    max_frames: int = 2000
    batch_windows: int = 8
    window_len: int = 128
    top_k: int = 30
    min_segment: int = 0
    n_init: int = 10
    eigen_solver: str = "auto"
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_int("n_clusters", self.n_clusters, minimum=1)
        check_int("window", self.window, minimum=1)
        check_float("lambda1", self.lambda1, nonnegative=True)
        check_float("lambda2", self.lambda2, nonnegative=True)
        check_int("n_iters", self.n_iters, minimum=1)
        if self.warmup_iters is not None:
            check_int("warmup_iters", self.warmup_iters, minimum=0, maximum=self.n_iters - 1)
        check_float("eta", self.eta, positive=True)
        check_int("sinkhorn_iters", self.sinkhorn_iters, minimum=1)
        check_float("eps_sq", self.eps_sq, positive=True)
        check_layer_widths(self.hidden_dims, allow_empty=True)
        check_int("out_dim", self.out_dim, minimum=1)
        check_float("lr", self.lr, positive=True)
        check_float("weight_decay", self.weight_decay, nonnegative=True)
        check_int("rate_rows", self.rate_rows, minimum=0)
        check_float("temporal_affinity", self.temporal_affinity, nonnegative=True)
        check_int("max_frames", self.max_frames, minimum=2)
        check_int("batch_windows", self.batch_windows, minimum=1)
        check_int("window_len", self.window_len, minimum=2)
        check_int("top_k", self.top_k, minimum=1)
        check_int("min_segment", self.min_segment, minimum=0)
        check_int("n_init", self.n_init, minimum=1)
        check_eigen_solver(self.eigen_solver)
        if not (self.use_rate or self.lambda1 > 0 or self.lambda2 > 0):
            raise ValueError("the objective is empty: use_rate=False, lambda1=0 and lambda2=0")
        check_device("device", self.device)

    @property
    def warmup(self) -> int:
        """Warm-up steps: ``warmup_iters``, or 10 % of ``n_iters`` (PRO-DSC's CPU-plan share)."""
        if self.warmup_iters is not None:
            return self.warmup_iters
        return min(math.ceil(0.1 * self.n_iters), self.n_iters - 1)


def _sparse_sinkhorn(K: sp.csr_matrix, n_iters: int) -> sp.csr_matrix:
    """T·diag(u) K diag(v) with uniform marginals (rows and columns summing to ≈ 1) for a sparse K > 0."""
    T = K.shape[0]
    u = np.ones(T)
    v = np.ones(T)
    Kt = K.T.tocsr()
    for _ in range(n_iters):  # full row + column scalings, each O(nnz)
        u = 1.0 / np.maximum(K @ v, 1e-300)
        v = 1.0 / np.maximum(Kt @ u, 1e-300)
    return (sp.diags(u) @ K @ sp.diags(v)).tocsr()


class TR2C(DeepClusterEstimator):
    """Temporal Rate Reduction Clustering of one sequence of frames (rows of ``X``, in time order).

    Parameters mirror :class:`TR2CConfig` (validated there). Fitted attributes: ``labels_`` (after the
    optional ``min_segment`` post-processing), ``labels_raw_`` (spectral step), ``affinity_matrix_``
    (sparse CSR), ``embedding_`` (Z, T × d), ``cluster_codes_`` (Y), ``history_`` (per-step loss terms),
    ``n_iter_``, ``config_``.
    """

    _config_class = TR2CConfig
    _init_defaults: ClassVar[dict[str, Any]] = {"random_state": None}

    # ------------------------------------------------------------------------------------ set-up

    def _prepare(self, X: Any, cfg: TR2CConfig) -> np.ndarray:
        Xa = self._validate_X(X, reset=True, dtype=np.float32)
        T = Xa.shape[0]
        if cfg.window >= T:
            raise ValueError(
                f"the sequence has {T} frames; window={cfg.window} needs at least {cfg.window + 1}"
            )
        if cfg.max_frames < T and cfg.window >= min(cfg.window_len, T):
            raise ValueError(f"window_len={cfg.window_len} must exceed window={cfg.window} (T > max_frames)")
        if cfg.normalize:
            Xa = Xa - Xa.mean(axis=0)
            norms = np.linalg.norm(Xa, axis=1, keepdims=True)
            Xa = np.divide(Xa, norms, out=np.zeros_like(Xa), where=norms > 0)
        return Xa

    # ---------------------------------------------------------------------------------- training

    def _batch(self, T: int, cfg: TR2CConfig, gen: torch.Generator) -> torch.Tensor | None:
        """Frame indices (windows, window_len) of one mini-batch, or None for the full sequence."""
        if cfg.max_frames >= T:
            return None
        length = min(cfg.window_len, T)
        starts = torch.randint(0, T - length + 1, (cfg.batch_windows,), generator=gen)
        return starts[:, None] + torch.arange(length)[None, :]

    def _loss(
        self,
        net: TwoHeadNet,
        Xb: torch.Tensor,
        shape: tuple[int, int],
        warm: bool,
        cfg: TR2CConfig,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        Z, Y = net(Xb)
        n = Z.shape[0]
        R = coding_rate(Z, cfg.eps_sq)
        zero = Z.new_zeros(())
        if warm:
            return -R, torch.stack([R.detach(), zero, zero])
        Rc = zero
        if cfg.lambda1 > 0:
            Gamma = sinkhorn((Y @ Y.T).abs(), cfg.eta, cfg.sinkhorn_iters)
            if 0 < cfg.rate_rows < n:
                rows = torch.randperm(n, generator=gen)[: cfg.rate_rows].to(Z.device)
                Rc = compression_rate(Z, Gamma[rows], cfg.eps_sq) * (n / cfg.rate_rows)
            else:
                Rc = compression_rate(Z, Gamma, cfg.eps_sq)
        smooth = temporal_smoothness(Z.view(*shape, -1), cfg.window) / n if cfg.lambda2 > 0 else zero
        loss = cfg.lambda1 * Rc + cfg.lambda2 * smooth
        if cfg.use_rate:
            loss = loss - R
        return loss, torch.stack([R.detach(), Rc.detach(), smooth.detach()])

    def _train(self, Xa: np.ndarray, cfg: TR2CConfig, seed: int) -> TwoHeadNet:
        device = torch.device(cfg.device)
        T = Xa.shape[0]
        net = seeded_module(seed, lambda: TwoHeadNet(Xa.shape[1], cfg.hidden_dims, cfg.out_dim).to(device))
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        X = torch.from_numpy(Xa).to(device)
        warmup = cfg.warmup

        def step_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            if step == warmup and warmup > 0:
                net.copy_feature_head()
            idx = self._batch(T, cfg, gen)
            if idx is None:
                Xb, shape = X, (1, T)
            else:
                Xb, shape = X[idx.reshape(-1).to(device)], tuple(idx.shape)
            loss, terms = self._loss(net, Xb, shape, step < warmup, cfg, gen)
            return loss, torch.cat([loss.detach()[None], terms])

        net.train()
        history = run_steps(cfg.n_iters, step_fn, opt, desc="TR2C train")
        H = torch.stack(history).cpu().numpy()  # one host transfer after training, none per step
        self.history_ = {"loss": H[:, 0], "rate": H[:, 1], "compression": H[:, 2], "temporal": H[:, 3]}
        self.n_iter_ = cfg.n_iters
        return net

    # --------------------------------------------------------------------------------- inference

    def _codes(self, net: TwoHeadNet, Xa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        net.eval()
        Z, Y = forward_chunks(net, row_chunks(torch.from_numpy(Xa).to(next(net.parameters()).device)))
        return Z.cpu().numpy(), Y.cpu().numpy()

    def _membership(self, Y: np.ndarray, cfg: TR2CConfig) -> sp.csr_matrix:
        """Γ without its diagonal: dense Sinkhorn up to ``max_frames``, top-k sparse Sinkhorn above."""
        T = Y.shape[0]
        Yt = torch.from_numpy(Y).double()
        if cfg.max_frames >= T:
            G = sinkhorn((Yt @ Yt.T).abs(), cfg.eta, cfg.sinkhorn_iters).numpy()
            np.fill_diagonal(G, 0.0)
            return sp.csr_matrix(G)
        # Each frame's top_k |y_iᵀy_j| (self excluded, float64), kept as the kernel exp((|y_iᵀy_j| − 1)/η).
        K = topk_blockwise(
            lambda a, b: (Yt[a:b] @ Yt.T).abs(),
            T,
            T,
            min(cfg.top_k, T - 1),
            dtype=None,
            value_fn=lambda v: torch.exp((v - 1.0) / cfg.eta),
        )
        return _sparse_sinkhorn(K, cfg.sinkhorn_iters)

    def _affinity(self, Y: np.ndarray, cfg: TR2CConfig) -> sp.csr_matrix:
        G = self._membership(Y, cfg)
        A = (G + G.T) * 0.5
        if cfg.temporal_affinity > 0:
            W = temporal_adjacency(Y.shape[0], cfg.window)
            deg = np.asarray(W.sum(axis=1)).ravel()
            A = A + cfg.temporal_affinity * (sp.diags(1.0 / deg) @ W + W @ sp.diags(1.0 / deg)) * 0.5
        return A.tocsr()

    # ---------------------------------------------------------------------------------- public

    def fit(self, X: Any, y: Any = None) -> TR2C:
        """Learn the representation and membership of one sequence and segment its frames."""
        cfg: TR2CConfig = self._validate_params()
        Xa = self._prepare(X, cfg)
        seed = rng_seed(self.random_state)
        net = self._train(Xa, cfg, seed)
        Z, Y = self._codes(net, Xa)
        A = self._affinity(Y, cfg)
        labels = spectral_labels(
            A,
            cfg.n_clusters,
            n_components=None,
            n_init=cfg.n_init,
            solver=cfg.eigen_solver,
            random_state=seed,  # type: ignore[arg-type]
        )
        self.config_ = cfg
        self.network_ = net
        self.embedding_ = Z
        self.cluster_codes_ = Y
        self.affinity_matrix_ = A
        self.labels_raw_ = labels
        self.labels_ = remove_short_segments(labels, cfg.min_segment) if cfg.min_segment > 1 else labels
        return self
