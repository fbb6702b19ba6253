"""Log-domain Sinkhorn projection onto (scaled) doubly-stochastic matrices.

Entropic optimal transport with uniform marginals on a similarity S ∈ R^{n×m} (cost −S) and
temperature η (Cuturi 2013): find potentials f, g with

    Π = exp(S/η + f 1ᵀ + 1 gᵀ),   Π 1 = 1/n,   Πᵀ 1 = 1/m,

alternating f ← log(1/n) − logsumexp_j(S_ij/η + g_j) (row update) and
g ← log(1/m) − logsumexp_i(S_ij/η + f_i) (column update). The result is multiplied by n so that rows
sum to 1, as PRO-DSC, CPP and TR2C use it.

``n_iters`` counts full (row + column) iterations. The official PRO-DSC configs count
*half*-iterations and default to one, i.e. a single row update — which is just a row-wise softmax of
S/η, not a doubly-stochastic matrix. ``half_iters`` reproduces that exactly (``half_iters=1`` ≡ row
softmax). The output is differentiable with respect to S.
"""

from __future__ import annotations

import math

import torch

from structlearn.utils.validation import check_float, check_int


def sinkhorn(
    S: torch.Tensor,
    eta: float,
    n_iters: int | None = 5,
    *,
    half_iters: int | None = None,
) -> torch.Tensor:
    """Scaled transport plan n·Π for similarity ``S`` (n, m); exactly one of the counts is used.

    Args:
        S: similarity matrix; larger means more mass.
        eta: temperature η > 0; smaller gives sparser, more block-like plans.
        n_iters: full row+column iterations (ignored when ``half_iters`` is given).
        half_iters: alternating half-updates starting with the rows (the official code's ``piiter``).
    """
    check_float("eta", eta, positive=True)
    if half_iters is not None:
        steps = check_int("half_iters", half_iters, minimum=1)
    else:
        if n_iters is None:
            raise ValueError("give n_iters or half_iters")
        steps = 2 * check_int("n_iters", n_iters, minimum=1)
    if S.ndim != 2 or S.numel() == 0:
        raise ValueError(f"S must be a non-empty 2-D tensor, got shape {tuple(S.shape)}")
    with torch.autocast(device_type=S.device.type, enabled=False):
        logK = (S if S.dtype in (torch.float32, torch.float64) else S.float()) / eta
        n, m = logK.shape
        f = torch.zeros(n, 1, dtype=logK.dtype, device=logK.device)
        g = torch.zeros(1, m, dtype=logK.dtype, device=logK.device)
        log_mu, log_nu = -math.log(n), -math.log(m)
        for step in range(steps):
            if step % 2 == 0:
                f = log_mu - torch.logsumexp(logK + g, dim=1, keepdim=True)
            else:
                g = log_nu - torch.logsumexp(logK + f, dim=0, keepdim=True)
        return n * torch.exp(logK + f + g)
