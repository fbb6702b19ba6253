"""EnSC: elastic-net subspace clustering (You, Li, Robinson & Vidal, CVPR 2016, arXiv 1605.02633)
with its oracle-guided active-set solver over scikit-learn's ElasticNet (the objective in the class
docstring, in the paper's notation).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet

from structlearn.cluster.methods.self_expressive import (
    SelfExpressiveConfig,
    _SelfExpressive,
    _vote_with_fallback,
)
from structlearn.utils.validation import check_float, check_int


def _enet_solve(A: np.ndarray, x: np.ndarray, alpha: float, tau: float) -> np.ndarray:
    """argmin_c τ‖c‖₁ + (1 − τ)/2 ‖c‖² + (α/2)‖x − A c‖² with scikit-learn's coordinate descent.

    Dividing by α·D gives scikit-learn's form 1/(2D)‖x − Ac‖² + a·ρ‖c‖₁ + a(1 − ρ)/2‖c‖² with
    a = 1/(αD), ρ = τ.
    """
    D = A.shape[0]
    model = ElasticNet(alpha=1.0 / (alpha * D), l1_ratio=tau, fit_intercept=False, max_iter=1000, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(np.asfortranarray(A), x, check_input=False)
    return model.coef_


def enet_active_set(
    x: np.ndarray,
    X: np.ndarray,
    alpha: float,
    tau: float,
    support: np.ndarray,
    *,
    exclude: int = -1,
    max_outer_iter: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """argmin_c τ‖c‖₁ + (1 − τ)/2 ‖c‖² + (α/2)‖x − Σ_j c_j X_j‖² over the rows X_j of ``X`` (c_exclude = 0)
    by the oracle-guided active set (ORGEN, arXiv 1605.02633 §4): solve on ``support`` T, compute the
    oracle point δ = α(x − X_Tᵀc_T), add every j ∉ T with |⟨X_j, δ⟩| > τ (at most |T₀| of them, the
    most violated), repeat until none fails or ``max_outer_iter`` rounds. Returns (support, c) of the
    last solve, zeros included; its objective bounds the minimum from above when the loop was cut."""
    check_int("max_outer_iter", max_outer_iter, minimum=1)
    if X.ndim != 2 or x.shape != (X.shape[1],):
        raise ValueError(f"x must have shape ({X.shape[-1]},) to match X {X.shape}, got {x.shape}")
    if len(support) == 0:
        raise ValueError("support must name at least one row of X")
    s = len(support)
    T = np.asarray(support)
    for _ in range(max_outer_iter):
        support = T
        c_T = _enet_solve(X[support].T, x, alpha, tau)
        delta = alpha * (x - X[support].T @ c_T)  # oracle point
        corr = np.abs(X @ delta)
        corr[T] = 0.0
        if exclude >= 0:
            corr[exclude] = 0.0
        viol = np.flatnonzero(corr > tau * (1.0 + 1e-6))
        if viol.size == 0:
            break
        if viol.size > s:
            viol = viol[np.argpartition(-corr[viol], s - 1)[:s]]
        T = np.union1d(support[c_T != 0], viol)
    return support, c_T


@dataclass(frozen=True)
class EnSCConfig(SelfExpressiveConfig):
    """Validated parameters of :class:`EnSC` (declared once; its constructor is built here)."""

    gamma: float = 50.0
    tau: float = 0.9
    n_nonzero: int = 50
    support_size: int = 100
    max_outer_iter: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if check_float("gamma", self.gamma, positive=True) <= 1.0:
            raise ValueError(f"gamma must be > 1 (gamma <= 1 gives all-zero coefficients), got {self.gamma}")
        check_float("tau", self.tau, positive=True, maximum=1.0)
        check_int("n_nonzero", self.n_nonzero, minimum=1)
        check_int("support_size", self.support_size, minimum=1)
        check_int("max_outer_iter", self.max_outer_iter, minimum=1)


class EnSC(_SelfExpressive):
    """Elastic-net subspace clustering (You, Li, Robinson & Vidal, CVPR 2016, arXiv 1605.02633).

    Per sample x_i (row convention), eq. (3) of the paper:

        min_c  τ‖c‖₁ + (1 − τ)/2 ‖c‖² + (α/2)‖x_i − Σ_j c_j x_j‖²,   c_i = 0,

    with α = γ·α₀ and α₀ = τ / max_{j≠i} |⟨x_j, x_i⟩| the largest α for which c = 0 is optimal, so
    ``gamma`` > 1 is required for a non-zero solution. Solver: the oracle-guided active-set scheme
    (ORGEN, §4): solve on a support T (initially the ``support_size`` most coherent points), compute
    the oracle point δ = α(x_i − X_T c_T), add every j ∉ T with |⟨x_j, δ⟩| > τ (the coordinates whose
    optimality condition fails, at most ``support_size`` of them), repeat until none fails. The inner
    problem is scikit-learn's coordinate-descent ``ElasticNet``. The ``n_nonzero`` largest |c_j| are
    kept. One solve per sample: moderate N only (``max_samples``, default 10,000).

    Fitted: ``labels_``, ``representation_matrix_`` (CSR), ``affinity_matrix_`` (CSR).
    ``predict`` solves the same problem for new points over the training dictionary (no c_i = 0
    constraint) and takes the coefficient-weighted vote of the training labels.
    """

    _config_class = EnSCConfig
    _init_defaults: ClassVar[dict[str, Any]] = {"n_clusters": 8, "random_state": None}

    def _coefficients(self, Q: np.ndarray, X: np.ndarray, exclude_self: bool) -> sp.csr_matrix:
        """Sparse EN coefficients of the rows of Q over the dictionary rows of X (float64)."""
        m, N = Q.shape[0], X.shape[0]
        tau, gamma = float(self.tau), float(self.gamma)
        s = min(self.support_size, N - 1 if exclude_self else N)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        block = 256
        for start in range(0, m, block):
            stop = min(start + block, m)
            G = Q[start:stop] @ X.T  # coherences of this block of queries, (b, N)
            if exclude_self:
                G[np.arange(stop - start), np.arange(start, stop)] = 0.0
            absG = np.abs(G)
            coh = absG.max(axis=1)
            if exclude_self:
                absG[np.arange(stop - start), np.arange(start, stop)] = -1.0  # never in a support
            init = np.argpartition(-absG, s - 1, axis=1)[:, :s]
            for r in range(stop - start):
                i = start + r
                c = self._solve_one(Q[i], X, i if exclude_self else -1, init[r], coh[r], gamma, tau)
                if c is None:
                    continue
                idx, v = c
                rows.append(np.full(idx.size, i))
                cols.append(idx)
                vals.append(v)
        if not rows:
            return sp.csr_matrix((m, N), dtype=np.float32)
        C = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(m, N),
            dtype=np.float32,
        )
        C.eliminate_zeros()
        return C

    def _solve_one(
        self,
        x: np.ndarray,
        X: np.ndarray,
        self_idx: int,
        T: np.ndarray,
        coh: float,
        gamma: float,
        tau: float,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if coh <= 0:
            return None
        support, c_T = enet_active_set(
            x, X, gamma * tau / coh, tau, T, exclude=self_idx, max_outer_iter=self.max_outer_iter
        )
        nz = np.flatnonzero(c_T)
        if nz.size > self.n_nonzero:
            nz = nz[np.argpartition(-np.abs(c_T[nz]), self.n_nonzero - 1)[: self.n_nonzero]]
        if nz.size == 0:
            return None
        return support[nz], c_T[nz]

    def fit(self, X: Any, y: Any = None) -> EnSC:
        self._validate_params()
        Xa = self._validate_X(X, reset=True, dtype=np.float64)
        self._check_size(Xa.shape[0])
        self._dictionary = Xa
        self._finish_fit(self._coefficients(Xa, Xa, exclude_self=True))
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Coefficient-weighted vote of the training labels (EN coefficients over the training set)."""
        Xa = self._validate_X(X, reset=False, dtype=np.float64)
        C = self._coefficients(Xa, self._dictionary, exclude_self=False)
        return _vote_with_fallback(C, Xa, self._dictionary, self.labels_)
