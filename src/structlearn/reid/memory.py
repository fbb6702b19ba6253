"""Memory banks of contrastive unsupervised ReID (spec segmentation_reid.md §2.3).

* :class:`InstanceMemory` — SpCL's hybrid memory as used by CACL and SiCL: one L2-normalised feature
  per training image; the logit of class ℓ for a feature x is the mean over ℓ's members of xᵀv_j/τ,
  i.e. xᵀū_ℓ/τ with ū_ℓ the members' mean; the loss is the (optionally focal) negative log-likelihood
  of a softmax over the non-empty classes (clusters and singletons).
* :class:`ClusterMemory` — Cluster-Contrast's centroid memory: one L2-normalised centroid per cluster,
  rebuilt each epoch from the features, cross-entropy over centroids.

Both update **explicitly** after the optimiser step, ``memory.update(keys, features)``:
v ← m·v + (1 − m)·x, then L2-renormalised (m weights the old entry; SpCL/CACL m = 0.2). The official
code performs the same update as a side effect inside a custom autograd backward (our deviation: an
explicit call, easier to test, same result). Focal weighting: −(1 − q)^γ log q with q the target
class probability (CACL: γ = 2 in the paper, 4 in the code; γ = 0 is plain cross-entropy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from structlearn.utils.validation import check_float


def _focal_nll(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    if gamma == 0:
        return -logp.mean()
    return -(((1.0 - logp.exp()) ** gamma) * logp).mean()


class _Memory(nn.Module):
    def __init__(self, features: torch.Tensor, temperature: float, momentum: float, gamma: float) -> None:
        super().__init__()
        if features.dim() != 2 or features.shape[0] == 0:
            raise ValueError(f"memory features must be a non-empty 2-D tensor, got {tuple(features.shape)}")
        if not torch.isfinite(features).all():
            raise ValueError("memory features contain NaN or infinite values")
        self.temperature = check_float("temperature", temperature, positive=True)
        self.momentum = check_float("momentum", momentum, nonnegative=True, maximum=1.0)
        self.gamma = check_float("gamma", gamma, nonnegative=True)
        self.register_buffer("features", F.normalize(features.detach().float(), dim=1))

    @torch.no_grad()
    def update(self, keys: torch.Tensor, x: torch.Tensor) -> None:
        """v_key ← m·v_key + (1 − m)·x, renormalised. A key repeated in the batch (sampling with
        replacement) is updated once per occurrence, in batch order: one vectorised round per
        occurrence rank (rounds ≤ the largest multiplicity, i.e. ≤ K of a P×K batch)."""
        keys = keys.to(self.features.device, torch.int64)
        x = F.normalize(x.detach().float(), dim=1)
        order = torch.argsort(keys, stable=True)
        ks = keys[order]
        new_group = torch.ones_like(ks, dtype=torch.bool)
        new_group[1:] = ks[1:] != ks[:-1]
        group_start = torch.cummax(torch.where(new_group, torch.arange(ks.numel(), device=ks.device), 0), 0)
        rank = torch.arange(ks.numel(), device=ks.device) - group_start.values
        for r in range(int(rank.max()) + 1 if rank.numel() else 0):
            sel = order[rank == r]
            k = keys[sel]
            self.features[k] = F.normalize(
                self.momentum * self.features[k] + (1 - self.momentum) * x[sel], dim=1
            )


class InstanceMemory(_Memory):
    """Per-instance memory with class logits from member means (SpCL/CACL/SiCL hybrid memory).

    Args:
        features: (N, d) initial features of the N training images.
        labels: (N,) pseudo-labels in [0, C) (outliers already made singletons).
        temperature: τ (0.05). momentum: m (0.2). gamma: focal exponent (0 = cross-entropy).
    """

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        temperature: float = 0.05,
        momentum: float = 0.2,
        gamma: float = 0.0,
    ) -> None:
        super().__init__(features, temperature, momentum, gamma)
        self.set_labels(labels)

    def set_labels(self, labels: torch.Tensor) -> None:
        labels = torch.as_tensor(labels, dtype=torch.int64, device=self.features.device)
        if labels.shape != (self.features.shape[0],):
            raise ValueError(f"labels must have shape ({self.features.shape[0]},), got {tuple(labels.shape)}")
        if labels.min() < 0:
            raise ValueError("labels must be >= 0 (make DBSCAN outliers singletons first)")
        self.register_buffer("labels", labels, persistent=False)
        self.n_classes = int(labels.max()) + 1

    def class_means(self) -> torch.Tensor:
        """ū_ℓ: mean member feature of every class (C, d); empty classes are zero rows."""
        sums = torch.zeros(self.n_classes, self.features.shape[1], device=self.features.device)
        sums.index_add_(0, self.labels, self.features)
        counts = torch.bincount(self.labels, minlength=self.n_classes).clamp_min(1)
        return sums / counts[:, None]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(self.labels, minlength=self.n_classes)
        logits = F.normalize(x, dim=1) @ self.class_means().T / self.temperature
        return logits.masked_fill(counts[None, :] == 0, float("-inf"))

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Loss of the batch features ``x`` of the images ``indices`` (their targets are their labels)."""
        targets = self.labels[indices.to(self.labels.device)]
        return _focal_nll(self.logits(x), targets, self.gamma)


class ClusterMemory(_Memory):
    """Centroid memory (Cluster-Contrast): rows = L2-normalised cluster centroids."""

    def __init__(
        self, centroids: torch.Tensor, temperature: float = 0.05, momentum: float = 0.2, gamma: float = 0.0
    ) -> None:
        super().__init__(centroids, temperature, momentum, gamma)

    @classmethod
    def from_features(cls, features: torch.Tensor, labels: torch.Tensor, **kw: float) -> ClusterMemory:
        """Centroids = mean feature of each cluster (labels −1 are ignored)."""
        labels = torch.as_tensor(labels, dtype=torch.int64)
        keep = labels >= 0
        if not keep.any():
            raise ValueError("no clustered sample: every label is -1")
        n = int(labels[keep].max()) + 1
        sums = torch.zeros(n, features.shape[1]).index_add_(0, labels[keep], features[keep].float())
        counts = torch.bincount(labels[keep], minlength=n)
        if (counts == 0).any():
            raise ValueError("cluster labels must be contiguous 0..C-1 (an id has no member)")
        return cls(sums / counts[:, None], **kw)

    def forward(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = F.normalize(x, dim=1) @ self.features.T / self.temperature
        return _focal_nll(logits, targets.to(self.features.device, torch.int64), self.gamma)
