"""Normalisation layers of the Deeply Normalized Transformer (DNT, arXiv 2507.17501).

- :class:`RMSNorm`: RMSN(x) = γ ⊙ x / √(‖x‖²/d + ε) with a learnable per-dimension gain γ (init 1).
  The paper states its Jacobian propositions for this layer,
  ∂RMSN/∂x = √d/√(‖x‖² + dε) · diag(γ) · (I − xxᵀ/(‖x‖² + dε))   (2507.17501, §3).
- :class:`LayerNorm`: γ ⊙ (x − mean)/std (+ β, optional; bias-free by default, as in nanoGPT).
- :class:`QKNorm`: the per-head QK-norm of §3: each head's q (and k) is L2-normalised and rescaled by
  √d_h and a learnable per-dimension gain g (init 1), q ← √d_h · g ⊙ q/‖q‖. Since
  √d_h · q/‖q‖ = q/√(‖q‖²/d_h), this *is* an RMSNorm over the head dimension, so it shares the
  RMSNorm kernel (ε = 1e-6 inside the root only matters for ‖q‖² ≲ d_h·ε).

All three normalise over the last dimension. The RMSNorm backward is hand-written
(:class:`_RMSNormFn`): torch's CPU RMSNorm has no fused backward kernel and its composite backward
cost ~3× LayerNorm's, which made DNT's extra norms dominate its step-time overhead.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from structlearn.utils.validation import check_choice, check_float, check_int

NORM_TYPES: tuple[str, ...] = ("rms", "layer")
DEFAULT_EPS = 1e-6
# False routes RMSNorm through torch's composite ``F.rms_norm`` (for before/after step-time measurements).
FAST_RMS_BACKWARD = True


class _RMSNormFn(torch.autograd.Function):
    """y = x·r·γ with r = 1/√(mean(x²) + ε); backward from the saved x̂ = x·r and r.

    dL/dx = r · (ĝ − x̂ · mean(ĝ ⊙ x̂)) with ĝ = γ ⊙ dL/dy ;  dL/dγ = Σ_tokens dL/dy ⊙ x̂.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:  # type: ignore[override]
        r = torch.rsqrt(x.square().mean(-1, keepdim=True).add_(eps))
        xhat = x * r
        ctx.save_for_backward(xhat, r, weight)
        return xhat * weight

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        xhat, r, weight = ctx.saved_tensors
        d = xhat.shape[-1]
        gx = grad * xhat
        dw = gx.reshape(-1, d).sum(0) if ctx.needs_input_grad[1] else None
        dx = None
        if ctx.needs_input_grad[0]:
            # mean_j(γ_j g_j x̂_j) as a matrix-vector product: one fewer elementwise pass; dx then
            # reuses gx's buffer (fresh large CPU allocations cost page faults).
            s = (gx @ weight).unsqueeze(-1).div_(d)
            dx = torch.mul(grad, weight, out=gx).addcmul_(xhat, s, value=-1).mul_(r)
        return dx, dw, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """RMSNorm over the last dimension (same values as ``F.rms_norm``; faster backward on CPU)."""
    if x.device.type != "cpu" or not FAST_RMS_BACKWARD:
        return F.rms_norm(x, (x.shape[-1],), weight, eps)  # GPUs have a fused kernel
    if x.dtype != weight.dtype:
        # Mixed precision (bf16 autocast): normalise in the gain's precision, as autocast does for
        # layer_norm, instead of reducing squares in bf16.
        x = x.to(weight.dtype)
    return _RMSNormFn.apply(x, weight, eps)


class RMSNorm(nn.Module):
    """Root-mean-square normalisation with a learnable per-dimension gain (init 1)."""

    def __init__(self, dim: int, eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.eps = check_float("eps", eps, positive=True)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class LayerNorm(nn.Module):
    """LayerNorm with a learnable gain (init 1) and an optional bias (off by default)."""

    def __init__(self, dim: int, eps: float = DEFAULT_EPS, bias: bool = False) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.eps = check_float("eps", eps, positive=True)
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, bias={self.bias is not None}"


def make_norm(kind: str, dim: int, eps: float = DEFAULT_EPS) -> nn.Module:
    """``'rms'`` → :class:`RMSNorm`, ``'layer'`` → bias-free :class:`LayerNorm`."""
    check_choice("norm type", kind, NORM_TYPES)
    return RMSNorm(dim, eps) if kind == "rms" else LayerNorm(dim, eps)


class QKNorm(nn.Module):
    """Per-head QK-norm: q ← √d_h · g ⊙ q/‖q‖ over the head dimension (last axis).

    One gain vector of length ``head_dim`` shared by all heads (the per-dimension gain of the paper).
    With the softmax scale 1/√d_h kept, every attention logit satisfies
    |q·k|/√d_h ≤ √d_h · max|g_q| · max|g_k|, whatever the magnitude of W_q and W_k.
    """

    def __init__(self, head_dim: int, eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        self.head_dim = check_int("head_dim", head_dim, minimum=1)
        self.eps = check_float("eps", eps, positive=True)
        self.weight = nn.Parameter(torch.ones(head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, eps={self.eps}"
