"""Coding rates of representations (MCR², arXiv 2006.08558; used by PRO-DSC, TR2C, MLC, CPP).

Total coding rate of Z ∈ R^{n×d} (rows are samples):

    R(Z; ε) = ½ log det(I_d + d/(n ε²) ZᵀZ) = ½ log det(I_n + d/(n ε²) Z Zᵀ)   (Sylvester)

computed on the smaller side. Compression rate of Z under a (soft) membership M ∈ R^{g×n}_{≥0},
group j weighting sample i by M_ji and s_j = Σ_i M_ji:

    R_c(Z, M; ε) = Σ_j s_j/(2n) · log det(I_d + d/(s_j ε²) Zᵀ Diag(M_j) Z)

With hard 0/1 masks this is MCR²'s R_c(Z, Π); with a doubly-stochastic Γ whose rows sum to 1 it is
the MLC/CPP form (1/(2n)) Σ_j log det(I + d/ε² Zᵀ Diag(Γ_j) Z).

The argument is ``eps_sq`` = ε²: the official PRO-DSC/CPP code's ``eps`` is already ε² (default 0.1).
Log-determinants are taken by Cholesky in at least float32 with autocast disabled: the matrix is
I + PSD, hence SPD, and log-dets under fp16/bf16 are unreliable.
"""

from __future__ import annotations

import torch

from structlearn.utils.validation import check_float


def _logdet_spd(M: torch.Tensor) -> torch.Tensor:
    """log det of (a batch of) symmetric positive-definite matrices via Cholesky."""
    L = torch.linalg.cholesky(M)
    return 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)


def _upcast(Z: torch.Tensor) -> torch.Tensor:
    return Z if Z.dtype in (torch.float32, torch.float64) else Z.float()


def coding_rate(Z: torch.Tensor, eps_sq: float = 0.1) -> torch.Tensor:
    """R(Z; ε) for Z of shape (n, d); differentiable; uses the cheaper of the d×d and n×n forms."""
    check_float("eps_sq", eps_sq, positive=True)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise ValueError(f"Z must be a non-empty 2-D tensor (n, d), got shape {tuple(Z.shape)}")
    with torch.autocast(device_type=Z.device.type, enabled=False):
        Z = _upcast(Z)
        n, d = Z.shape
        alpha = d / (n * eps_sq)
        G = Z.T @ Z if d <= n else Z @ Z.T
        eye = torch.eye(G.shape[0], dtype=Z.dtype, device=Z.device)
        return 0.5 * _logdet_spd(eye + alpha * G)


def compression_rate(Z: torch.Tensor, membership: torch.Tensor, eps_sq: float = 0.1) -> torch.Tensor:
    """R_c(Z, M; ε) for Z (n, d) and non-negative memberships M (g, n), one row per group.

    Cost O(g·n·d² + g·d³); groups with zero total weight contribute nothing.
    """
    check_float("eps_sq", eps_sq, positive=True)
    if Z.ndim != 2 or membership.ndim != 2 or membership.shape[1] != Z.shape[0]:
        raise ValueError(
            f"membership must have shape (groups, n) with n = Z.shape[0]; got Z {tuple(Z.shape)}, "
            f"membership {tuple(membership.shape)}"
        )
    with torch.autocast(device_type=Z.device.type, enabled=False):
        Z = _upcast(Z)
        M = membership.to(Z.dtype)
        n, d = Z.shape
        s = M.sum(dim=1)  # (g,)
        active = s > 0
        s_safe = torch.where(active, s, torch.ones_like(s))
        # Zᵀ Diag(M_j) Z for every group j at once: (g, d, d), as one matmul of M with the rows' outer
        # products (n, d²) — an einsum over "gn,nd,ne" materialises (g, n, d) and is ~3× slower.
        cov = (M @ (Z[:, :, None] * Z[:, None, :]).reshape(n, d * d)).reshape(-1, d, d)
        eye = torch.eye(d, dtype=Z.dtype, device=Z.device)
        logdets = _logdet_spd(eye + (d / (s_safe * eps_sq))[:, None, None] * cov)
        return (torch.where(active, s / (2 * n) * logdets, torch.zeros_like(logdets))).sum()
