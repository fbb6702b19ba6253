"""NeuNcut: neural normalised cut (He et al., Pattern Recognition 2025, arXiv 2503.09260).

Spectral clustering without an eigendecomposition: a network g_θ maps a point to membership logits and
P = softmax(g_θ(x)) ∈ Δ^k (paper eq. (6)). It is trained by mini-batch SGD on the relaxed normalised
cut of the batch affinity W with the orthogonality penalty (eqs. (7)–(8); see
:mod:`structlearn.cluster.ncut`):

    min_θ  tr(Hᵀ L H) + (γ/2) ‖Hᵀ D H − I_k‖_F / k,   H = P Diag(dᵀP)^{−1/2},  L = D − W.

Unseen points are labelled by argmax_j g_θ(x)_j — linear in N, no N×N object, done in chunks.

Architecture and optimiser as the official code: MLP D → 512 → 512 (ReLU) → k, Kaiming-uniform hidden
layers, Xavier output layer; Adam (lr 5e-3, weight decay 1e-4) with cosine annealing; batch 1,000;
γ = 80. Deviation (spec §4.4): the batch affinity's bandwidth is the batch's median pairwise distance
and the kernel is kNN-sparsified inside the batch (``sigma="median"``, ``n_neighbors=10``); the
official σ = 3 with the full kernel is nearly flat on unit-norm rows and is available as
``sigma=3.0, n_neighbors=None``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from structlearn.cluster.base import ClusterEstimator
from structlearn.cluster.ncut import gaussian_affinity, ncut_loss
from structlearn.cluster.networks import relu_mlp
from structlearn.utils.seed import rng_seed, torch_generator
from structlearn.utils.validation import check_float, check_int

PREDICT_CHUNK = 16384  # rows per forward pass in predict: memory O(chunk · width)


@dataclass(frozen=True)
class NeuNcutConfig:
    """Validated hyper-parameters of one :class:`NeuNcut` fit (built from the estimator's params)."""

    n_clusters: int
    hidden_dims: tuple[int, ...] = (512, 512)
    gamma: float = 80.0
    sigma: float | str = "median"
    n_neighbors: int | None = 10
    batch_size: int = 1000
    n_epochs: int = 100
    lr: float = 5e-3
    weight_decay: float = 1e-4
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_int("n_clusters", self.n_clusters, minimum=1)
        if len(self.hidden_dims) == 0:
            raise ValueError("hidden_dims must list at least one layer width")
        for i, h in enumerate(self.hidden_dims):
            check_int(f"hidden_dims[{i}]", h, minimum=1)
        check_float("gamma", self.gamma, nonnegative=True)
        if isinstance(self.sigma, str):
            if self.sigma != "median":
                raise ValueError(f"unknown sigma {self.sigma!r}; give a positive number or 'median'")
        else:
            check_float("sigma", self.sigma, positive=True)
        if self.n_neighbors is not None:
            check_int("n_neighbors", self.n_neighbors, minimum=1)
        check_int("batch_size", self.batch_size, minimum=2)
        check_int("n_epochs", self.n_epochs, minimum=1)
        check_float("lr", self.lr, positive=True)
        check_float("weight_decay", self.weight_decay, nonnegative=True)
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"invalid device {self.device!r}: {exc}") from None


def membership_mlp(in_dim: int, hidden_dims: Sequence[int], n_clusters: int) -> nn.Sequential:
    """D → hidden … (ReLU) → k logits (see :func:`structlearn.cluster.networks.relu_mlp`)."""
    return relu_mlp(in_dim, hidden_dims, n_clusters)


class NeuNcut(ClusterEstimator):
    """Neural normalised cut: memberships P = softmax(MLP(x)) trained on the relaxed Ncut of batches.

    Fitted attributes: ``labels_`` (argmax on the training set), ``net_`` (the MLP, eval mode),
    ``history_`` (per-step total / spectral / orthogonality losses), ``n_features_in_``, ``n_iter_``,
    ``train_seconds_`` (wall time of the optimisation loop).
    """

    _config_class = NeuNcutConfig

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        hidden_dims: tuple[int, ...] = (512, 512),
        gamma: float = 80.0,
        sigma: float | str = "median",
        n_neighbors: int | None = 10,
        batch_size: int = 1000,
        n_epochs: int = 100,
        lr: float = 5e-3,
        weight_decay: float = 1e-4,
        random_state: Any = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.gamma = gamma
        self.sigma = sigma
        self.n_neighbors = n_neighbors
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> NeuNcut:
        """Train the membership network on mini-batch affinities of X; ``labels_`` = argmax on X."""
        self._validate_params()
        cfg = self._config()
        Xn = self._validate_X(X, reset=True)
        seed = rng_seed(self.random_state)
        device = torch.device(cfg.device)
        n = Xn.shape[0]
        Xt = torch.from_numpy(Xn).to(device)
        B = min(cfg.batch_size, n)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = membership_mlp(Xn.shape[1], cfg.hidden_dims, cfg.n_clusters).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        per_epoch = n // B  # drop_last: every batch has the same size, hence comparable losses
        total = cfg.n_epochs * per_epoch
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        gen = torch_generator(seed)
        full_batch = n == B
        W_full = gaussian_affinity(Xt, cfg.sigma, cfg.n_neighbors) if full_batch else None
        history: list[torch.Tensor] = []
        net.train()
        bar = tqdm(total=total, desc="NeuNcut train", disable=not self.verbose, leave=False)
        log_every = max(1, total // 50)
        t0 = time.perf_counter()
        for _ in range(cfg.n_epochs):
            perm = None if full_batch else torch.randperm(n, generator=gen).to(device)
            for b in range(per_epoch):
                if full_batch:
                    xb, W = Xt, W_full  # the affinity does not depend on θ: built once
                else:
                    xb = Xt[perm[b * B : (b + 1) * B]]
                    W = gaussian_affinity(xb, cfg.sigma, cfg.n_neighbors)
                out = ncut_loss(W, torch.softmax(net(xb), dim=1), cfg.gamma)
                opt.zero_grad(set_to_none=True)
                out.total.backward()
                opt.step()
                sched.step()
                history.append(torch.stack([out.total, out.spectral, out.orthogonality]).detach())
                bar.update(1)
                if self.verbose and len(history) % log_every == 0:
                    bar.set_postfix(loss=f"{float(history[-1][0]):.4g}")  # host sync only when verbose
        bar.close()
        self.train_seconds_ = time.perf_counter() - t0
        net.eval()
        self.net_ = net
        self.n_iter_ = len(history)
        H = torch.stack(history).cpu().numpy()
        self.history_ = {"loss": H[:, 0], "spectral": H[:, 1], "orthogonality": H[:, 2]}
        self.labels_ = self._argmax(Xt[s : s + PREDICT_CHUNK] for s in range(0, n, PREDICT_CHUNK))
        return self

    def _chunks(self, X: Any) -> Iterator[torch.Tensor]:
        """Validated float32 row chunks on the device; a large 2-D array is validated chunk by chunk, so
        no N×D temporary (dtype copy, finiteness mask) is allocated."""
        device = torch.device(self.device)
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[0] > PREDICT_CHUNK:
            for s in range(0, X.shape[0], PREDICT_CHUNK):
                yield torch.from_numpy(self._validate_X(X[s : s + PREDICT_CHUNK], reset=False)).to(device)
            return
        Xt = torch.from_numpy(self._validate_X(X, reset=False)).to(device)
        for s in range(0, Xt.shape[0], PREDICT_CHUNK):
            yield Xt[s : s + PREDICT_CHUNK]

    @torch.no_grad()
    def _argmax(self, chunks: Iterable[torch.Tensor]) -> np.ndarray:
        return torch.cat([self.net_(xb).argmax(dim=1) for xb in chunks]).cpu().numpy().astype(np.int64)

    def predict(self, X: Any) -> np.ndarray:
        """argmax of the membership logits, chunk by chunk: time linear in N, O(chunk) working memory."""
        return self._argmax(self._chunks(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Soft memberships P = softmax(g_θ(x)) (N × k)."""
        with torch.no_grad():
            return torch.cat([torch.softmax(self.net_(xb), dim=1) for xb in self._chunks(X)]).cpu().numpy()
