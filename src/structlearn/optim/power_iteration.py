"""Batched power iteration for the largest singular value σ₁ of a stack of matrices.

Used by the spectral step bound of "Taming Transformer Without Using Learning Rate Warmup"
(arXiv 2505.21910, §3: σ₁(W_{t−1}) and σ₁(ΔW_t) by power iteration, 2 iterations reported enough,
3 at most). The right singular vectors are persistent: each call starts from the vectors the
previous call returned, so a matrix that changes slowly between optimizer steps needs only 1–3
iterations to stay converged (warm start; our inference, spec warmup_free.md §2.2).

One iteration is two batched mat-vecs (``torch.bmm``) over every matrix of the stack:
    u = A v,   w = Aᵀ u,   v ← w / ‖w‖;   after the last one σ̂ = ‖w‖/‖u‖.
σ̂ = ‖Aᵀû‖ (û = u/‖u‖) ≥ ûᵀAv = ‖Av‖ is the better of the two free estimates; both are lower bounds
on σ₁. Intermediate vectors are not normalised between the two products (fewer kernels); AᵀA v
stays finite for σ₁ up to ~1e19 in float32.
Everything stays on the device, with no host synchronisation, except in the certificate's early-stopping
form (:func:`sigma_upper_bound_gram` with ``good_enough``), which is meant for the CPU.
"""

from __future__ import annotations

import math

import torch

from structlearn.utils.validation import check_int


def init_vectors(
    batch: int,
    n: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random unit start vectors, shape (batch, n), drawn on the CPU so every device gets the same."""
    v = torch.randn(batch, n, generator=generator, dtype=torch.float32)
    v = v / v.norm(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    return v.to(device=device, dtype=dtype)


@torch.no_grad()
def power_iteration(A: torch.Tensor, v: torch.Tensor, iters: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimate σ₁ of each matrix in ``A`` (batch, m, n) starting from right vectors ``v`` (batch, n).

    Returns ``(sigma, v_new)``: sigma (batch,) ≤ σ₁ (exact at convergence) and the updated unit
    vectors. A zero matrix gets σ̂ = 0 and keeps its old vector (a zero vector would never recover).
    """
    iters = check_int("power_iters", iters, minimum=1)
    if A.dim() != 3 or v.dim() != 2 or v.shape != (A.shape[0], A.shape[2]):
        raise ValueError(
            f"power_iteration expects A (B, m, n) and v (B, n); got {tuple(A.shape)}, {tuple(v.shape)}"
        )
    return power_iteration_trusted(A, v, iters)


def power_iteration_trusted(
    A: torch.Tensor, v: torch.Tensor, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`power_iteration` without the argument checks, for callers whose shapes and ``iters`` were
    validated once (the spectral bound's buckets, every step)."""
    tiny = torch.finfo(A.dtype).tiny
    # Row-vector products (1×m)·(m×n): CPU bmm is an order of magnitude slower for Aᵀ·(column).
    x0 = x = v.unsqueeze(1)  # (B, 1, n)
    for _ in range(iters):
        u = torch.bmm(x, A.mT)  # (A x)ᵀ, (B, 1, m)
        w = torch.bmm(u, A)  # (AᵀA x)ᵀ, (B, 1, n)
        norm_w = w.norm(dim=2, keepdim=True)
        x = w / norm_w.clamp_min(tiny)
    # σ̂ = ‖AᵀA x‖/‖A x‖ for the last input x (= ‖Aᵀu‖ with u = Ax/‖Ax‖); a zero matrix keeps x0.
    sigma = norm_w / u.norm(dim=2, keepdim=True).clamp_min(tiny)
    x = torch.where(norm_w > 0, x, x0)
    return sigma.view(-1), x.squeeze(1)


def sigma_max(A: torch.Tensor, iters: int = 50, seed: int = 0) -> torch.Tensor:
    """σ₁ of a single matrix (or a stack) from a random start: a convenience for diagnostics."""
    batched = A.dim() == 3
    A3 = A if batched else A.unsqueeze(0)
    gen = torch.Generator().manual_seed(seed)
    v = init_vectors(A3.shape[0], A3.shape[2], dtype=A3.dtype, device=A3.device, generator=gen)
    s, _ = power_iteration(A3, v, iters)
    return s if batched else s[0]


@torch.no_grad()
def gram(A: torch.Tensor) -> torch.Tensor:
    """G = AᵀA (or AAᵀ when m < n, the smaller side) of each matrix in ``A`` (batch, m, n)."""
    if A.dim() != 3:
        raise ValueError(f"gram expects A (B, m, n), got shape {tuple(A.shape)}")
    return torch.bmm(A.mT, A) if A.shape[1] >= A.shape[2] else torch.bmm(A, A.mT)


@torch.no_grad()
def power_iteration_gram(
    G: torch.Tensor, v: torch.Tensor, iters: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`power_iteration` of A given only its Gram matrix G = AᵀA (batch, n, n).

    The same iteration (w = G x = Aᵀ(A x), x ← w/‖w‖) and the same estimate σ̂ = ‖G x‖/‖A x‖ with
    ‖A x‖ = (xᵀG x)^{1/2}, a lower bound on σ₁(A), at n² instead of m·n per mat-vec: cheaper when the
    certificate has formed G anyway and m > n.
    """
    iters = check_int("power_iters", iters, minimum=1)
    if G.dim() != 3 or G.shape[1] != G.shape[2] or v.shape != G.shape[:2]:
        raise ValueError(
            f"power_iteration_gram expects G (B, n, n) and v (B, n); got {tuple(G.shape)}, {tuple(v.shape)}"
        )
    return power_iteration_gram_trusted(G, v, iters)


def power_iteration_gram_trusted(
    G: torch.Tensor, v: torch.Tensor, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`power_iteration_gram` without the argument checks (see :func:`power_iteration_trusted`)."""
    tiny = torch.finfo(G.dtype).tiny
    x0 = x = v.unsqueeze(1)  # (B, 1, n)
    for _ in range(iters):
        w = torch.bmm(x, G)  # (G x)ᵀ: G is symmetric
        norm_w = w.norm(dim=2, keepdim=True)
        xin, x = x, w / norm_w.clamp_min(tiny)
    norm_u = (xin * w).sum(dim=2, keepdim=True).clamp_min(0).sqrt()  # ‖A x‖ for the last input x
    sigma = norm_w / norm_u.clamp_min(tiny)
    x = torch.where(norm_w > 0, x, x0)
    return sigma.view(-1), x.squeeze(1)


@torch.no_grad()
def frobenius_upper_bound(A: torch.Tensor) -> torch.Tensor:
    """‖A‖_F ≥ σ₁ of each matrix in ``A`` (batch, m, n), rounded up; +inf where no safe bound is known.

    The certificate's level −1: no Gram product (one pass over A), overestimates σ₁ by up to
    (rank A)^{1/2}. Rounding: the k = m·n squares, their sum in any order and the square root lose at most
    a factor (1 − γ_{k+2})^{1/2} with γ_k = k·u/(1 − k·u) (u = eps/2), which 1 + 2·(k + 2)·eps covers while
    k·u ≤ 1/4; squares that underflow lose at most k·tiny in all, ≤ 2^−26 of any sum above
    k·tiny·2^26. So +inf (no bound, never a wrong one) beyond 4M float32 entries and where the computed
    norm is below (k·tiny)^{1/2}·2^13 (about 1e-13 in float32, exact zeros included).
    """
    k = A.shape[-2] * A.shape[-1] + 2
    info = torch.finfo(A.dtype)
    fro = torch.linalg.matrix_norm(A)
    if k * info.eps / 2 > 0.25:
        return torch.full_like(fro, math.inf)
    floor = math.sqrt(k * info.tiny) * 2.0**13
    return torch.where(fro >= floor, fro * (1.0 + 2.0 * k * info.eps + 2.0**-26), math.inf)


@torch.no_grad()
def sigma_upper_bound(A: torch.Tensor, squarings: int = 4) -> torch.Tensor:
    """A certified upper bound on σ₁ of each matrix in ``A`` (batch, m, n): the Schatten-2k norm.

    See :func:`sigma_upper_bound_gram` (this forms the Gram matrix of the smaller side first).
    """
    squarings = check_int("squarings", squarings, minimum=0)
    if A.dim() != 3:
        raise ValueError(f"sigma_upper_bound expects A (B, m, n), got shape {tuple(A.shape)}")
    return sigma_upper_bound_gram(gram(A), squarings, max(A.shape[1], A.shape[2]), A=A)


def max_entry_upper_bound(A: torch.Tensor) -> torch.Tensor:
    """(m·n)^{1/2}·max|a_ij| ≥ ‖A‖_F ≥ σ₁ of each matrix in ``A`` (batch, m, n), rounded up.

    The fallback where the Gram certificate has no valid bound (entries so small that their products
    underflow, or so large that they overflow): the maximum is exact in any dtype, and the product is
    formed in float64, enlarged by 2^−22 relative plus the smallest float32 subnormal before rounding
    to A's dtype, so it never rounds below the true value (+inf past the dtype's range). Zero for a zero
    matrix. Loose (by up to (m·n/rank)^{1/2}), and never used outside those extremes.
    """
    amax = torch.linalg.vector_norm(A, ord=math.inf, dim=(-2, -1)).double()
    bound = amax * (math.sqrt(A.shape[-2] * A.shape[-1]) * (1.0 + 2.0**-22)) + 2.0**-149
    return torch.where(amax > 0, bound, 0.0).to(A.dtype)


@torch.no_grad()
def sigma_upper_bound_gram(
    G: torch.Tensor,
    squarings: int,
    long_side: int,
    good_enough: torch.Tensor | None = None,
    A: torch.Tensor | None = None,
) -> torch.Tensor:
    """The certified upper bound of :func:`sigma_upper_bound` from G = AᵀA (batch, n, n).

    ``long_side`` = max(m, n) of A, for the rounding margin of G. ``good_enough`` (batch,): stop squaring a
    matrix once its bound is at or below this value (every level's bound is certified, only looser); the
    decided matrices leave the batch, so later squarings cost less. That needs one host synchronisation
    per level: for the CPU, where it is free.

    With G = AᵀA (or AAᵀ, the smaller side) and k = 2^s:
        σ₁ = λ_max(G)^{1/2} ≤ (Σ_i λ_i^{2k})^{1/(4k)} = ‖G^k‖_F^{1/(2k)} ≤ r^{1/(4k)}·σ₁   (r = rank A),
    so the bound overestimates by at most r^{1/(4k)} (s = 4: 1.08 for r = 128, 1.10 for r = 384) and
    never underestimates, unlike power iteration (a lower bound). G^k comes from s repeated squarings,
    each normalised by its Frobenius norm c_i to stay in range:
        λ_max(G) ≤ Π_{i=0..s} c_i^{2^{−i}},  c_0 = ‖G‖_F, H_0 = G/c_0, c_i = ‖H_{i−1}²‖_F, H_i = H_{i−1}²/c_i
    (c_i = 1, no normalisation, at odd i < s).
    Cost: one Gram product (m·n·min(m, n)) and s products of min(m, n)² matrices; no host sync without
    ``good_enough``.
    The result is multiplied by 1 + 16·eps·max(m, n) + 2^−26 to cover the rounding of G in A's dtype and
    the products that underflowed in it (each loses at most ``tiny``).

    Range: G alone cannot tell a zero matrix from one whose products all underflowed, nor a finite bound
    from overflow. Underflow moves each entry of G by at most max(m, n)·tiny, so λ_max by at most
    n·max(m, n)·tiny, and the squares inside c_0 = ‖G‖_F lose at most n²·tiny of c_0²; both stay below
    2^−26 of λ_max ≥ c_0/√n once c_0 ≥ max(2^26·n^{5/2}·max(m, n)·tiny, 2^13·n·tiny^{1/2}) (about 1e-13
    in float32: entries of A below ~4e-9 for a 512 × 128 matrix fall short). Below that, or where c_0 is
    not finite (its squares overflow from entries of ~1e8 on for an 80 × 80 matrix), the result is
    :func:`max_entry_upper_bound` of ``A`` when A is given, else +inf: no bound known, never a wrong one
    (the spectral bound's CPU path decides such small steps at its Frobenius level first).
    """
    info = torch.finfo(G.dtype)
    tiny = info.tiny
    n = G.shape[-1]
    margin = 1.0 + 16.0 * info.eps * max(long_side, 1) + 2.0**-26
    floor = max(2.0**26 * n**2.5 * max(long_side, 1) * tiny, 2.0**13 * n * math.sqrt(tiny))
    c0 = torch.linalg.matrix_norm(G)
    log_bound = torch.log(c0.clamp_min(tiny))
    H = G / c0.clamp_min(tiny).view(-1, 1, 1)
    if good_enough is None:  # no host reads: the range test stays on the device
        valid = (c0 >= floor) & (c0 <= info.max)  # NaN fails both
        target, bad = None, []
    else:  # a matrix without a valid bound never stops early
        bad = [k for k, x in enumerate(c0.tolist()) if not floor <= x <= info.max]
        target = good_enough.tolist()
        for k in bad:
            target[k] = -math.inf
    # Early stopping (``good_enough``): checked where the chain normalises (i = 0, 2, 4, …), so a matrix
    # that never stops gets the fixed chain's result. live = (matrix, its row in H) of the undecided ones;
    # a decided matrix leaves H only once a quarter of H's rows have (copying H costs about what a few
    # squarings of one row save).
    out = torch.zeros_like(c0)
    live = [(k, k) for k in range(G.shape[0])]
    for i in range(squarings + 1):
        if i > 0:
            H = torch.bmm(H, H)
            # Normalised every second squaring and at the last (fewer elementwise passes): from ‖H‖_F = 1
            # an unnormalised square keeps ‖H²‖_F ≥ n^{-1/2} and the next one ≥ n^{-3/2}, far from
            # underflow; the skipped factor is carried by the next c_i (the product formula holds for any
            # c_i > 0).
            if i % 2 and i < squarings:
                continue
            c = torch.linalg.matrix_norm(H).clamp_min(tiny)
            H.div_(c.view(-1, 1, 1))
            log_bound = log_bound + torch.log(c) * 2.0**-i
        if target is None or i == squarings:  # no decision: fixed chain, or the last level
            continue
        lb = log_bound.tolist()
        done = [(k, r) for k, r in live if math.exp(0.5 * lb[r]) * margin <= target[k]]
        if not done:
            continue
        out[[k for k, _ in done]] = torch.exp(0.5 * log_bound[[r for _, r in done]]) * margin
        finished = {k for k, _ in done}
        live = [(k, r) for k, r in live if k not in finished]
        if not live:
            break
        if len(live) <= 0.75 * H.shape[0]:
            keep = [r for _, r in live]
            H, log_bound = H[keep], log_bound[keep]
            live = [(k, j) for j, (k, _) in enumerate(live)]
    if target is None:
        out = torch.exp(0.5 * log_bound) * margin
        return torch.where(valid, out, math.inf if A is None else max_entry_upper_bound(A))
    if live:
        out[[k for k, _ in live]] = torch.exp(0.5 * log_bound[[r for _, r in live]]) * margin
    if bad:
        out[bad] = math.inf if A is None else max_entry_upper_bound(A[bad])
    return out
