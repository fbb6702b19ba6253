"""The temporal graph of a frame sequence and its Laplacian smoothness term.

Used by TR2C (arXiv 2506.21249, the regulariser tr(Z L_t Zᵀ) of its objective) and by the temporal
subspace clustering baseline (TSC, Li, Fu & Fu, ICCV 2015; OSC, Tierney, Gao & Guo, CVPR 2014).

Frames i, j of one sequence of length T are linked when they are at most ``window`` = s apart
(our reading of the paper's sliding window; s = 2 there):

    W_ij = 1 if 0 < |i − j| ≤ s, else 0;   L_t = Diag(W 1) − W.

For Z ∈ R^{T×d} with rows z_i (the papers write Z ∈ R^{d×T} and tr(Z L_t Zᵀ); same number),

    tr(Zᵀ L_t Z) = ½ Σ_ij W_ij ‖z_i − z_j‖² = Σ_{k=1..s} Σ_{i=1..T−k} ‖z_{i+k} − z_i‖²,

which :func:`temporal_smoothness` evaluates from neighbour differences in O(T·s·d) time and memory —
no T×T matrix. :func:`temporal_laplacian` builds L_t as a banded sparse matrix (O(T·s) non-zeros).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from structlearn.utils.validation import check_int


def _check_sizes(n_frames: int, window: int) -> tuple[int, int]:
    T = check_int("n_frames", n_frames, minimum=1)
    s = check_int("window", window, minimum=1)
    if s >= T:
        raise ValueError(f"the sequence has {T} frames; a temporal window of {s} needs at least {s + 1}")
    return T, s


def temporal_adjacency(n_frames: int, window: int) -> sp.csr_matrix:
    """W (T × T, CSR, float64): ones on the diagonals ±1 … ±s, zero elsewhere."""
    T, s = _check_sizes(n_frames, window)
    offsets = [k for k in range(-s, s + 1) if k != 0]
    diagonals = [np.ones(T - abs(k)) for k in offsets]
    return sp.diags(diagonals, offsets, shape=(T, T), format="csr", dtype=np.float64)


def temporal_laplacian(n_frames: int, window: int) -> sp.csr_matrix:
    """L_t = Diag(W 1) − W of the temporal graph (CSR, float64, symmetric, PSD)."""
    W = temporal_adjacency(n_frames, window)
    deg = np.asarray(W.sum(axis=1)).ravel()
    return (sp.diags(deg) - W).tocsr()


def temporal_smoothness(Z: torch.Tensor, window: int) -> torch.Tensor:
    """tr(Zᵀ L_t Z) for Z of shape (..., T, d): the sum over k ≤ s of squared k-step differences.

    Leading dimensions are independent sequences (e.g. the windows of a mini-batch): no difference
    is taken across them. Differentiable; O(T·s·d).
    """
    if Z.ndim < 2:
        raise ValueError(f"Z must have shape (..., T, d), got {tuple(Z.shape)}")
    _check_sizes(Z.shape[-2], window)
    total = Z.new_zeros(())
    for k in range(1, window + 1):  # s is small (2 in the paper): one vectorised difference per lag
        diff = Z[..., k:, :] - Z[..., :-k, :]
        total = total + diff.pow(2).sum()
    return total
