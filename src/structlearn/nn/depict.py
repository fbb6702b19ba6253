"""DEPICT operators (Wen & Li, NeurIPS 2024, arXiv 2411.03033; spec segmentation_reid.md §1.3).

Row convention: tokens Z ∈ R^{T×d}; one projection P ∈ R^{(h·p)×d}, heads P_k ∈ R^{p×d}.

    MSSA:  W_k = LN(Z) P_kᵀ,  A_k = softmax(W_k W_kᵀ / √p),  Z ← Z + η Σ_k A_k W_k P_k
    MSCA:  W_k = LN(Z) P_kᵀ,  U_k = Q P_kᵀ,  A_k = softmax(U_k W_kᵀ / √p),  Q ← Q + η Σ_k A_k W_k P_k

One matrix P serves as query, key, value and output projection (CRATE-style subspace attention); no biases,
no FFN; η is a learnable scalar initialised from N(0, 1), so the sign of the step is learned.
The sum over heads Σ_k (·)_k P_k is one matmul with the concatenated heads against P.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from structlearn.utils.validation import check_int


def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, h·p) → (B, h, T, p)."""
    B, T, hp = x.shape
    return x.view(B, T, n_head, hp // n_head).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(B, h, T, p) → (B, T, h·p)."""
    B, h, T, p = x.shape
    return x.transpose(1, 2).reshape(B, T, h * p)


class SubspaceAttention(nn.Module):
    """MSSA (``queries is None``) or MSCA step with one shared projection P per head (eq. in module doc)."""

    def __init__(self, dim: int, n_head: int, head_dim: int) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.n_head = check_int("n_head", n_head, minimum=1)
        self.head_dim = check_int("head_dim", head_dim, minimum=1)
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Parameter(torch.empty(n_head * head_dim, dim))  # P, rows = concatenated heads P_k
        self.step = nn.Parameter(torch.randn(()))  # η ~ N(0, 1)
        nn.init.trunc_normal_(self.proj, std=0.02, a=-0.04, b=0.04)

    def forward(self, z: torch.Tensor, queries: torch.Tensor | None = None) -> torch.Tensor:
        self._check_tokens(z, "z")
        if queries is not None:
            self._check_tokens(queries, "queries")
            if queries.shape[0] != z.shape[0]:
                raise ValueError(f"queries has batch {queries.shape[0]}, z has {z.shape[0]}")
        w = _heads(self.norm(z) @ self.proj.T, self.n_head)  # (B, h, T, p): keys = values = LN(Z) P_kᵀ
        q = w if queries is None else _heads(queries @ self.proj.T, self.n_head)  # queries are not LN'd
        out = F.scaled_dot_product_attention(q, w, w)  # softmax(q wᵀ/√p) w, per head
        update = _merge(out) @ self.proj  # Σ_k A_k W_k P_k
        return (z if queries is None else queries) + self.step * update

    def _check_tokens(self, t: torch.Tensor, name: str) -> None:
        """Metadata checks only (no host sync): (B, T, dim) in the parameters' floating dtype."""
        if not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[-1] != self.dim:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a (batch, tokens, {self.dim}) tensor, got {shape}")
        if t.dtype != self.proj.dtype and not torch.is_autocast_enabled(t.device.type):
            raise ValueError(f"{name} has dtype {t.dtype}; the module's parameters are {self.proj.dtype}")

    def head_gram_error(self) -> torch.Tensor:
        """‖P_k P_kᵀ − I_p‖_F for each head k (orthogonality diagnostic, §1.2)."""
        P = self.proj.view(self.n_head, self.head_dim, -1)
        eye = torch.eye(self.head_dim, dtype=P.dtype, device=P.device)
        return torch.linalg.matrix_norm(P @ P.transpose(1, 2) - eye)
