"""Rank measures of a spectrum, shared by clustering (collapse of Z) and attention diagnostics."""

from __future__ import annotations

import torch


def effective_rank(singular_values: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Effective rank of Roy & Vetterli (2007): exp(−Σ p_i log p_i), p_i = σ_i / Σ_j σ_j.

    Works on batches (the spectrum along ``dim``); an all-zero spectrum has effective rank 0.
    """
    s = singular_values.abs().to(torch.float64)
    total = s.sum(dim=dim, keepdim=True)
    p = s / total.clamp_min(torch.finfo(torch.float64).tiny)
    ent = -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(dim=dim)
    out = ent.exp()
    return torch.where(total.squeeze(dim) > 0, out, torch.zeros_like(out)).to(singular_values.dtype)


def numerical_rank(singular_values: torch.Tensor, energy: float = 0.95) -> int:
    """Smallest r with Σ_{i≤r} σ_i² / Σ σ_i² > ``energy`` (the MLC / PRO-DSC diagnostic)."""
    s2 = singular_values.detach().to(torch.float64).flatten().square().sort(descending=True).values
    total = s2.sum()
    if total <= 0:
        return 0
    frac = torch.cumsum(s2, 0) / total
    return min(int((frac <= energy).sum().item()) + 1, int(s2.numel()))
