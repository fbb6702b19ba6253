"""HCL and MGCE-HCL: hybrid (cluster + instance) contrastive learning with a multi-granularity
clustering ensemble (Sun, Li & Li, ACPR 2021, arXiv 2201.11995; spec segmentation_reid.md §4.2 — the
paper's loss weights and τ are not public, the form below is the spec's reconstruction).

With the instance memory V (rows v_j), cluster means c_k (:class:`~structlearn.reid.memory.InstanceMemory`)
and base pseudo-labels y (the middle granularity):

- L_clu = −log( exp(xᵀc_y/τ) / Σ_k exp(xᵀc_k/τ) );
- L_ins = −Σ_{j ∈ P(i)} w̄_ij · log( exp(xᵀv_j/τ) / Σ_{l ≠ i} exp(xᵀv_l/τ) ), P(i) = {j ≠ i : y_j = y_i},
  w̄ = w normalised to sum 1 over P(i); queries with P(i) = ∅ (singletons) contribute no L_ins;
- HCL: w_ij = 1. MGCE-HCL: w_ij = (1/G) Σ_g 1[y_i^g = y_j^g ≠ −1] over G DBSCAN clusterings of one
  Jaccard matrix at different eps — a pseudo-positive that more granularities agree on weighs more;
  optionally w_ij^p (our option, ``power``: p ≫ 1 approaches "the most-agreed positives first");
- L = L_clu + λ·L_ins (λ = 1).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.cluster import DBSCAN

from structlearn.utils.validation import check_float, check_int


def granularity_labels(D: sp.csr_matrix, eps_list: tuple[float, ...], min_samples: int = 4) -> np.ndarray:
    """DBSCAN labels (G, N) of the precomputed distances ``D`` at every eps of ``eps_list``."""
    if len(eps_list) == 0:
        raise ValueError("eps_list must hold at least one eps")
    min_samples = check_int("min_samples", min_samples, minimum=1)
    return np.stack(
        [
            DBSCAN(eps=check_float("eps", e, positive=True), min_samples=min_samples, metric="precomputed")
            .fit_predict(D)
            .astype(np.int64)
            for e in eps_list
        ]
    )


def agreement_weights(multi: torch.Tensor, rows: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """w_ij = (fraction of granularities in which i (a row of the batch) and j share a cluster) ** power
    (B, N). ``power`` 1 is the spec's weight; a large power lets the positives that the most granularities
    agree on carry almost all of a row's weight after L_ins normalises it (its priority order)."""
    a = multi[:, rows]  # (G, B)
    same = (a[:, :, None] == multi[:, None, :]) & (multi[:, None, :] >= 0)
    w = same.float().mean(dim=0)
    return w if power == 1.0 else w.pow(power)


def instance_loss(
    x: torch.Tensor,
    memory: torch.Tensor,
    rows: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_ins of the batch features ``x`` of instances ``rows`` against the memory (N, d)."""
    logits = F.normalize(x, dim=1) @ memory.T / temperature  # (B, N)
    b = torch.arange(len(rows), device=x.device)
    logits[b, rows] = float("-inf")  # l ≠ i
    logp = F.log_softmax(logits, dim=1)
    pos = labels[rows][:, None] == labels[None, :]
    pos[b, rows] = False
    w = pos.float() if weights is None else weights * pos
    total = w.sum(dim=1, keepdim=True)
    per_row = -(w / total.clamp_min(1e-12) * logp.masked_fill(~pos, 0.0)).sum(dim=1)
    has = (total.squeeze(1) > 0).float()  # singletons have no positive: no term (no host sync)
    return (per_row * has).sum() / has.sum().clamp_min(1.0)
