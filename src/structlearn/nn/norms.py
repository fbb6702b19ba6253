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
cost ~3× LayerNorm's, which made DNT's extra norms dominate its step-time overhead. For the same
reason :func:`add_rms_norm` fuses DNT's MidNorm with the residual add that follows it.
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


def _rms_forward(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x̂ = x·r and r = 1/√(mean(x²) + ε); ‖x‖ in one reduction (no x² temporary; not autocast)."""
    r = torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_().div_(x.shape[-1]).add_(eps).rsqrt_()
    return x * r, r


def _rms_backward(
    grad: torch.Tensor, xhat: torch.Tensor, r: torch.Tensor, weight: torch.Tensor, need_x: bool, need_w: bool
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """dL/dx = r · (ĝ − x̂ · mean(ĝ ⊙ x̂)) with ĝ = γ ⊙ dL/dy ;  dL/dγ = Σ_tokens dL/dy ⊙ x̂."""
    d = xhat.shape[-1]
    gx = grad * xhat
    dw = gx.reshape(-1, d).sum(0) if need_w else None
    dx = None
    if need_x:
        # mean_j(γ_j g_j x̂_j) as a matrix-vector product: one fewer elementwise pass; dx then
        # reuses gx's buffer (fresh large CPU allocations cost page faults).
        s = (gx @ weight).unsqueeze(-1).div_(d)
        dx = torch.mul(grad, weight, out=gx).addcmul_(xhat, s, value=-1).mul_(r)
    return dx, dw


class _RMSNormFn(torch.autograd.Function):
    """y = γ ⊙ x̂; saves x̂ and r for :func:`_rms_backward`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:  # type: ignore[override]
        xhat, r = _rms_forward(x, eps)
        ctx.save_for_backward(xhat, r, weight)
        return xhat * weight

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        xhat, r, weight = ctx.saved_tensors
        dx, dw = _rms_backward(grad, xhat, r, weight, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return dx, dw, None


class _AddRMSNormFn(torch.autograd.Function):
    """out = residual + γ ⊙ x̂ in one pass (``addcmul``): DNT's MidNorm and the residual add fused."""

    @staticmethod
    def forward(
        ctx, residual: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, eps: float
    ) -> torch.Tensor:  # type: ignore[override]
        xhat, r = _rms_forward(x, eps)
        ctx.save_for_backward(xhat, r, weight)
        return torch.addcmul(residual, xhat, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        xhat, r, weight = ctx.saved_tensors
        dx, dw = _rms_backward(grad, xhat, r, weight, ctx.needs_input_grad[1], ctx.needs_input_grad[2])
        return grad if ctx.needs_input_grad[0] else None, dx, dw, None


def _check_gain(x: torch.Tensor, weight: torch.Tensor) -> None:
    if weight.shape != x.shape[-1:]:
        raise ValueError(
            f"RMSNorm gain has shape {tuple(weight.shape)}; the input's last dimension is {x.shape[-1]}"
        )


def _broadcasts_to(shape: torch.Size, target: torch.Size) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (off the hot path: only for unequal shapes)."""
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """RMSNorm over the last dimension (same values as ``F.rms_norm``; faster backward on CPU)."""
    _check_gain(x, weight)
    if x.dtype != weight.dtype:
        # Mixed precision (bf16 autocast): normalise in the gain's precision, as autocast does for
        # layer_norm, instead of reducing squares in bf16. On a GPU this is also the fast path: with
        # mixed dtypes F.rms_norm leaves its fused kernel for a composite of ~6 kernels (dnt bf16 ran
        # at 0.56 of nanoGPT's tokens/s on an H200).
        x = x.to(weight.dtype)
    if x.device.type != "cpu" or not FAST_RMS_BACKWARD:
        return F.rms_norm(x, (x.shape[-1],), weight, eps)  # GPUs have a fused kernel
    return _RMSNormFn.apply(x, weight, eps)


def add_rms_norm(
    residual: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, eps: float = DEFAULT_EPS
) -> torch.Tensor:
    """``residual + rms_norm(x, weight, eps)``, fused on CPU (one elementwise pass and tensor fewer)."""
    _check_gain(x, weight)
    if residual.shape != x.shape and not _broadcasts_to(residual.shape, x.shape):
        raise ValueError(f"residual of shape {tuple(residual.shape)} does not fit input {tuple(x.shape)}")
    fusable = x.device.type == "cpu" and residual.dtype == weight.dtype and residual.shape == x.shape
    if not (fusable and FAST_RMS_BACKWARD):
        return residual + rms_norm(x, weight, eps)
    if x.dtype != weight.dtype:
        x = x.to(weight.dtype)
    return _AddRMSNormFn.apply(residual, x, weight, eps)


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
