"""Multi-head self-attention with optional per-head QK-norm (DNT, arXiv 2507.17501, §3).

    q_h, k_h, v_h = heads(W_q h), heads(W_k h), heads(W_v h)
    q_h ← √d_h · g_q ⊙ q_h/‖q_h‖ ,  k_h ← √d_h · g_k ⊙ k_h/‖k_h‖          (QKNorm, optional)
    a = W_o · concat_h softmax(q_h k_hᵀ / √d_h + mask) v_h

``W_q, W_k, W_v, W_o`` are separate bias-free ``nn.Linear`` modules (``wq``, ``wk``, ``wv``, ``wo``) so
that other code can read each matrix (e.g. W_qᵀW_k per head for the warmup-free spectral bounds). The
forward pass still runs one matrix product for q, k, v by concatenating the three weights (≈10 %
faster on CPU than three products; gradients flow to each weight unchanged).

The softmax scale 1/√d_h is kept with QK-norm (spec dnt.md §1.3), so logits are bounded by
√d_h · max|g_q| · max|g_k|. Attention runs through ``F.scaled_dot_product_attention`` with that
explicit scale; with ``capture_attention = True`` the same math is computed explicitly and the
probabilities are stored detached in ``last_attention`` (B, H, T, T) for diagnostics.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from structlearn.nn.norms import DEFAULT_EPS, QKNorm
from structlearn.utils.validation import check_float, check_int


class MultiHeadAttention(nn.Module):
    """Bias-free multi-head self-attention; input and output (B, T, n_embd)."""

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        *,
        causal: bool = False,
        qk_norm: bool = False,
        dropout: float = 0.0,
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        check_int("n_embd", n_embd, minimum=1)
        check_int("n_head", n_head, minimum=1)
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.dropout = check_float("dropout", dropout, nonnegative=True, maximum=0.999)
        self.n_embd = n_embd
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        self.causal = bool(causal)
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.wq = nn.Linear(n_embd, n_embd, bias=False)
        self.wk = nn.Linear(n_embd, n_embd, bias=False)
        self.wv = nn.Linear(n_embd, n_embd, bias=False)
        self.wo = nn.Linear(n_embd, n_embd, bias=False)
        self.q_norm = QKNorm(self.head_dim, eps) if qk_norm else None
        self.k_norm = QKNorm(self.head_dim, eps) if qk_norm else None
        self.capture_attention: bool = False
        self.last_attention: torch.Tensor | None = None

    @property
    def qk_norm(self) -> bool:
        return self.q_norm is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        H, dh = self.n_head, self.head_dim
        w_qkv = torch.cat([self.wq.weight, self.wk.weight, self.wv.weight])
        q, k, v = F.linear(x, w_qkv).view(B, T, 3, H, dh).unbind(2)  # each (B, T, H, dh)
        if self.q_norm is not None and self.k_norm is not None:
            # Normalise before moving heads forward, on contiguous copies: elementwise passes over the
            # strided q/k views of the qkv buffer cost ~5× a contiguous pass on CPU, the copy ~1×.
            q, k = self.q_norm(q.contiguous()), self.k_norm(k.contiguous())
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, dh)
        p_drop = self.dropout if self.training else 0.0
        if self.capture_attention:
            y = self._explicit(q, k, v, p_drop)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=p_drop, is_causal=self.causal, scale=self.scale
            )
        return self.wo(y.transpose(1, 2).reshape(B, T, C))

    def _explicit(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p_drop: float) -> torch.Tensor:
        """softmax(q kᵀ·scale + mask) v, keeping the probabilities (diagnostics path only)."""
        logits = (q @ k.transpose(-2, -1)) * self.scale
        if self.causal:
            T = q.shape[-2]
            future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu_(1)
            logits = logits.masked_fill(future, float("-inf"))
        att = torch.softmax(logits, dim=-1)
        self.last_attention = att.detach()
        if p_drop > 0:
            att = F.dropout(att, p_drop)
        return att @ v

    def extra_repr(self) -> str:
        return f"n_head={self.n_head}, head_dim={self.head_dim}, causal={self.causal}, qk_norm={self.qk_norm}"
