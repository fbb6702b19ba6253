"""Attention-collapse diagnostics: entropy, effective rank and spectral energy concentration.

Paper: "Taming Transformer Without Using Learning Rate Warmup" (arXiv 2505.21910), spec
warmup_free.md §1. Column convention P = Xᵀ W_qᵀ W_k X, A = softmax(P/√d_q) row-wise.

- Attention entropy (Zhai et al., arXiv 2303.06296): H(A_i·) = −Σ_j A_ij log A_ij per query row i,
  averaged over rows (and batch) for each head. Entropy collapse: H → 0.
- Effective rank of A (Roy & Vetterli 2007), erank = exp(−Σ p_i log p_i), p_i = σ_i(A)/Σ_j σ_j(A):
  low entropy with high erank = benign collapse (near-permutation map), low entropy with low erank =
  malignant collapse (many queries on the same few keys), the paper's crash mode (§1.2; the erank
  operationalisation is our inference).
- Spectral energy concentration of the per-head W_h = W_q,hᵀ W_k,h (§1.3):
  SEC(s) = Σ_{i≤s} σ_i²(W_h) / Σ_i σ_i²(W_h), and its effective rank. W_h is d×d of rank ≤ d_h; with
  thin QR W_q,hᵀ = Q_q R_q and W_k,hᵀ = Q_k R_k its non-zero singular values are those of the
  d_h×d_h matrix R_q R_kᵀ, so no d×d SVD is ever formed.

All functions take tensors; :func:`attention_maps` runs a model with ``capture_attention`` switched on
for modules that expose it (``structlearn.nn.attention.MultiHeadAttention``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from structlearn.utils.linalg import effective_rank


def _as_bhtt(A: torch.Tensor) -> torch.Tensor:
    if A.dim() == 3:
        A = A.unsqueeze(0)
    if A.dim() != 4 or A.shape[-1] == 0 or A.shape[-2] == 0:
        raise ValueError(
            f"attention maps must have shape (B, H, T_q, T_k) or (H, T_q, T_k), got {tuple(A.shape)}"
        )
    return A


@torch.no_grad()
def attention_entropy(A: torch.Tensor) -> torch.Tensor:
    """Mean row entropy (nats) per head of attention maps (B, H, T_q, T_k) → (H,).

    Masked entries are zeros and contribute 0 (0·log 0 = 0); with a causal mask the first query row
    has entropy 0 by construction, as in the usual definition.
    """
    A = _as_bhtt(A).to(torch.float64)
    H = -torch.xlogy(A, A).sum(-1)  # (B, H, T_q)
    return H.mean(dim=(0, 2)).float()


@torch.no_grad()
def attention_erank(A: torch.Tensor) -> torch.Tensor:
    """Effective rank per head of attention maps (B, H, T_q, T_k) → (H,), averaged over the batch."""
    A = _as_bhtt(A).to(torch.float64)
    bad = ~torch.isfinite(A).all(dim=(-2, -1))  # a diverged model: report NaN instead of failing
    er = effective_rank(torch.linalg.svdvals(torch.where(bad[..., None, None], 0.0, A)))
    return torch.where(bad, torch.nan, er).mean(0).float()


@torch.no_grad()
def qk_singular_values(wq: torch.Tensor, wk: torch.Tensor, n_head: int) -> torch.Tensor:
    """Non-zero singular values of W_q,hᵀ W_k,h for every head, shape (H, min(d, d_h)), descending.

    ``wq``, ``wk`` are ``nn.Linear`` weights (H·d_h, d): head h's rows are h·d_h … (h+1)·d_h − 1.
    """
    if wq.dim() != 2 or wq.shape != wk.shape:
        raise ValueError(
            f"wq and wk must be matrices of equal shape, got {tuple(wq.shape)} and {tuple(wk.shape)}"
        )
    if n_head < 1 or wq.shape[0] % n_head:
        raise ValueError(f"n_head={n_head} does not divide the {wq.shape[0]} rows of wq")
    d_h = wq.shape[0] // n_head
    Wq = wq.detach().to(torch.float64).reshape(n_head, d_h, -1).transpose(1, 2)  # (H, d, d_h) = W_q,hᵀ
    Wk = wk.detach().to(torch.float64).reshape(n_head, d_h, -1).transpose(1, 2)
    bad = ~(torch.isfinite(Wq).all(dim=(1, 2)) & torch.isfinite(Wk).all(dim=(1, 2)))
    Wq, Wk = (torch.where(bad[:, None, None], 0.0, W) for W in (Wq, Wk))
    Rq = torch.linalg.qr(Wq, mode="r").R
    Rk = torch.linalg.qr(Wk, mode="r").R
    sv = torch.linalg.svdvals(Rq @ Rk.transpose(1, 2))
    return torch.where(bad[:, None], torch.nan, sv).float()  # NaN for heads with non-finite weights


def spectral_energy_concentration(sv: torch.Tensor, s: Sequence[int] = (1, 2, 3)) -> torch.Tensor:
    """SEC(s) = Σ_{i≤s} σ_i² / Σ_i σ_i² along the last dim, for each s → (..., len(s)); NaN if σ = 0."""
    if any(int(k) < 1 for k in s):
        raise ValueError(f"s must be positive integers, got {list(s)}")
    e = sv.detach().to(torch.float64).square().sort(dim=-1, descending=True).values
    cum = e.cumsum(-1)
    total = cum[..., -1:]
    idx = torch.tensor([min(int(k), e.shape[-1]) - 1 for k in s], device=e.device)
    out = cum.index_select(-1, idx) / total
    return torch.where(total > 0, out, torch.nan).float()


@torch.no_grad()
def spectral_norms(named: Iterable[tuple[str, torch.Tensor]]) -> dict[str, float]:
    """Exact σ₁ of each ≥ 2-D tensor (viewed as shape[0] × rest), batched over equal shapes."""
    groups: dict[tuple, list[tuple[str, torch.Tensor]]] = {}
    for name, p in named:
        if p.dim() >= 2 and p.numel() > 0:
            m = p.detach().reshape(p.shape[0], -1)
            groups.setdefault((tuple(m.shape), m.device), []).append((name, m))
    out: dict[str, float] = {}
    for items in groups.values():
        M = torch.stack([m.float() for _, m in items])
        bad = ~torch.isfinite(M).all(dim=(1, 2))
        s = torch.linalg.matrix_norm(torch.where(bad[:, None, None], 0.0, M), ord=2)
        s = torch.where(bad, torch.nan, s).tolist()
        out.update({n: v for (n, _), v in zip(items, s, strict=True)})
    return out


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that can record their attention probabilities (``capture_attention`` + wq/wk + n_head)."""
    return [
        (n, m)
        for n, m in model.named_modules()
        if hasattr(m, "capture_attention") and hasattr(m, "wq") and hasattr(m, "wk") and hasattr(m, "n_head")
    ]


@torch.no_grad()
def attention_maps(model: nn.Module, forward: Callable[[nn.Module], Any]) -> list[torch.Tensor]:
    """Run ``forward(model)`` in eval mode with capture on; return each layer's (B, H, T, T) map.

    Capture flags and the train/eval mode are restored afterwards, and ``last_attention`` is cleared so
    the maps do not keep memory alive between probes.
    """
    mods = [m for _, m in attention_modules(model)]
    if not mods:
        raise ValueError(
            "model has no attention module with capture_attention (structlearn MultiHeadAttention)"
        )
    flags = [m.capture_attention for m in mods]
    was_training = model.training
    try:
        for m in mods:
            m.capture_attention = True
        model.eval()
        forward(model)
        maps = []
        for m in mods:
            A = getattr(m, "last_attention", None)
            if A is None:
                raise ValueError("an attention module did not record last_attention during the probe forward")
            maps.append(A.detach())
    finally:
        for m, f in zip(mods, flags, strict=True):
            m.capture_attention = f
            if hasattr(m, "last_attention"):
                m.last_attention = None
        model.train(was_training)
    return maps


@torch.no_grad()
def qk_diagnostics(model: nn.Module, s: Sequence[int] = (1, 2, 3)) -> dict[str, torch.Tensor]:
    """Per layer and head: σ₁(W_qᵀW_k), SEC(s) and effective rank of W_qᵀW_k.

    Returns tensors ``sigma1`` (L, H), ``sec`` (L, H, len(s)), ``erank`` (L, H).
    """
    mods = [m for _, m in attention_modules(model)]
    if not mods:
        raise ValueError("model has no attention module with wq/wk weights")
    svs = [qk_singular_values(m.wq.weight, m.wk.weight, int(m.n_head)) for m in mods]
    sv = torch.stack(svs)
    return {"sigma1": sv[..., 0], "sec": spectral_energy_concentration(sv, s), "erank": effective_rank(sv)}
