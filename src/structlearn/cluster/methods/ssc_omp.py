"""SSC-OMP: sparse subspace clustering by orthogonal matching pursuit (You, Robinson & Vidal, CVPR 2016,
arXiv 1507.01238), OMP batched in torch for a block of samples at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.preprocessing import normalize

from structlearn.cluster.methods.self_expressive import (
    SelfExpressiveConfig,
    _SelfExpressive,
    _vote_with_fallback,
)
from structlearn.utils.validation import check_float, check_int


def batched_omp(
    Q: torch.Tensor,
    X: torch.Tensor,
    n_nonzero: int,
    *,
    tol: float = 1e-6,
    exclude_offset: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonal matching pursuit for every row of Q at once over the unit-norm dictionary rows of X.

    Greedy step: pick argmax_j |⟨r, x_j⟩| (self excluded when ``exclude_offset`` is given: row r of Q is
    dictionary row ``exclude_offset + r``); then least squares of q on the selected atoms and a new
    residual. A row stops (keeps its coefficients) once ‖r‖ ≤ tol·‖q‖. Returns (indices, coefficients),
    both (m, n_nonzero); unused slots hold coefficient 0.
    """
    m, N = Q.shape[0], X.shape[0]
    steps = min(n_nonzero, N - (exclude_offset is not None))
    Q64 = Q.double()
    X32, X64 = X.float(), X.double()  # fp32 for the big correlation product, fp64 for least squares
    idx = torch.zeros((m, steps), dtype=torch.long)
    coef = torch.zeros((m, steps), dtype=torch.float64)
    R = Q64.clone()
    active = torch.ones(m, dtype=torch.bool)
    qnorm = Q64.norm(dim=1)
    rows = torch.arange(m)
    blocked = torch.zeros((m, N), dtype=torch.bool)
    if exclude_offset is not None:
        blocked[rows, rows + exclude_offset] = True
    for s in range(steps):
        corr = (R.float() @ X32.T).abs().masked_fill_(blocked, -1.0)
        pick = corr.argmax(dim=1)
        idx[:, s] = pick
        blocked[rows, pick] = True
        A = X64[idx[:, : s + 1]]  # (m, s+1, D)
        sol = torch.linalg.lstsq(A.transpose(1, 2), Q64.unsqueeze(2)).solution.squeeze(2)
        newR = Q64 - torch.bmm(sol.unsqueeze(1), A).squeeze(1)
        # Rows already finished keep their earlier solution (zero-padded).
        coef[:, : s + 1] = torch.where(active.unsqueeze(1), sol, coef[:, : s + 1])
        R = torch.where(active.unsqueeze(1), newR, R)
        active &= R.norm(dim=1) > tol * qnorm
        if not bool(active.any()):  # one sync per greedy step, not per element
            break
    return idx, coef


@dataclass(frozen=True)
class SSCOMPConfig(SelfExpressiveConfig):
    """Validated parameters of :class:`SSCOMP` (declared once; its constructor is built here)."""

    n_nonzero: int = 10
    tol: float = 1e-6
    block_size: int = 1024
    max_samples: int = 100_000  # overrides the shared default (OMP is cheaper than EnSC's solver)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("n_nonzero", self.n_nonzero, minimum=1)
        check_float("tol", self.tol, nonnegative=True)
        check_int("block_size", self.block_size, minimum=1)


class SSCOMP(_SelfExpressive):
    """Sparse subspace clustering by orthogonal matching pursuit (You, Robinson & Vidal, CVPR 2016,
    arXiv 1507.01238).

    Per sample (rows L2-normalised first): min ‖x_i − Σ_j c_j x_j‖² s.t. ‖c‖₀ ≤ ``n_nonzero``, c_i = 0,
    approximated greedily by OMP with residual threshold ``tol``. OMP is run for a block of samples at
    once in torch (:func:`batched_omp`) — scikit-learn's ``orthogonal_mp`` cannot exclude a different
    atom (the sample itself) for each target. Memory: ``block_size × N`` correlations. Limit
    ``max_samples`` (default 100,000).

    Fitted: ``labels_``, ``representation_matrix_``, ``affinity_matrix_``. ``predict``: OMP of new
    points over the training dictionary, then the coefficient-weighted vote of the training labels.
    """

    _config_class = SSCOMPConfig
    _init_defaults: ClassVar[dict[str, Any]] = {"n_clusters": 8, "random_state": None}

    def _coefficients(self, Q: np.ndarray, X: np.ndarray, exclude_self: bool) -> sp.csr_matrix:
        m, N = Q.shape[0], X.shape[0]
        Xt = torch.from_numpy(X)
        parts = []
        for start in range(0, m, self.block_size):
            stop = min(start + self.block_size, m)
            idx, coef = batched_omp(
                torch.from_numpy(Q[start:stop]),
                Xt,
                self.n_nonzero,
                tol=float(self.tol),
                exclude_offset=start if exclude_self else None,
            )
            r = np.repeat(np.arange(start, stop), idx.shape[1])
            parts.append((r, idx.numpy().ravel(), coef.numpy().ravel()))
        rows, cols, vals = (np.concatenate(p) for p in zip(*parts, strict=True))
        C = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(m, N))
        C.eliminate_zeros()
        return C

    def fit(self, X: Any, y: Any = None) -> SSCOMP:
        self._validate_params()
        Xa = normalize(self._validate_X(X, reset=True))
        self._check_size(Xa.shape[0])
        self._dictionary = Xa
        self._finish_fit(self._coefficients(Xa, Xa, exclude_self=True))
        return self

    def predict(self, X: Any) -> np.ndarray:
        """OMP over the training dictionary, then the coefficient-weighted vote of training labels."""
        Xa = normalize(self._validate_X(X, reset=False))
        C = self._coefficients(Xa, self._dictionary, exclude_self=False)
        return _vote_with_fallback(C, Xa, self._dictionary, self.labels_)
