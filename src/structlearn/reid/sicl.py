"""SiCL's pieces beside the shared harness (Sun et al., arXiv 2305.13600; spec segmentation_reid.md
§5.2): the fusion head over the detached RGB and silhouette features, the ``k`` neighbour clusters of
each cluster (fused memory), and the neighbour term of the loss. The training loop is
:func:`structlearn.reid.trainer.train_reid` (``method="sicl"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class FusionHead(torch.nn.Module):
    """SiCL's fusion: concat(sg(x_rgb), sg(x_mask)) → Linear → BN (frozen bias) → L2 (spec §5.2)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2 * dim, dim)
        self.bn = torch.nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.bn(self.fc(torch.cat([a, b], dim=1))), dim=1)


def neighbour_clusters(centres: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` clusters most similar (cosine of centres) to each cluster, self excluded, and their
    similarities clipped to [0, 1]: (C, k) indices and (C, k) values."""
    c = F.normalize(centres, dim=1)
    sim = c @ c.T
    sim.fill_diagonal_(-2.0)
    if k <= 0:
        empty = torch.zeros(len(c), 0)
        return empty.long(), empty
    val, idx = torch.topk(sim, k, dim=1)
    return idx, val.clamp(0.0, 1.0)


def knn_loss(logits: torch.Tensor, nb: torch.Tensor, s: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """SiCL's neighbour term as the official code computes it (``maskcl/models/hm.py``,
    ``calculate_knn_loss``): ``F.nll_loss`` averages over the batch *before* the per-sample weight
    multiplies, so the term is Σ_n mean_b(−log q_{b,nb_bn}) · mean_b(s_bn·Bernoulli(s_bn)) / (k + 1)
    — a product of batch means, not the batch mean of the products. ``logits``: (B, C) class logits of
    the branch's own memory; ``nb``, ``s``: (B, k) neighbour clusters of each sample's cluster and their
    similarities in [0, 1]."""
    nll = -F.log_softmax(logits, dim=1).gather(1, nb)
    w = s * torch.bernoulli(s, generator=g)
    return (nll.mean(dim=0) * w.mean(dim=0)).sum() / (nb.shape[1] + 1)
