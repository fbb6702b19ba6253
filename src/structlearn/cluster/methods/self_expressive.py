"""Shared tail of the self-expressive baselines (EnSC, SSC-OMP) and of SENet: sparse C →
row-normalised → ½(|C| + |C|ᵀ) or a kNN graph over C's rows → the spectral step; ``predict`` is the
coefficient vote of :func:`structlearn.cluster.graph.affinity.coefficient_vote` (k-means labels of the
dictionary where a new point's coefficients vote for nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from structlearn.cluster.graph.affinity import affinity_from_coefficients, coefficient_vote
from structlearn.cluster.graph.spectral import check_eigen_solver, spectral_labels
from structlearn.cluster.methods.base import ClusterEstimator, EstimatorConfig
from structlearn.utils.seed import rng_seed
from structlearn.utils.validation import check_choice, check_int


@dataclass(frozen=True)
class SelfExpressiveConfig(EstimatorConfig):
    """The parameters EnSC and SSC-OMP share (their configs add theirs), validated once."""

    affinity: str = "symmetric"
    n_neighbors: int = 3
    n_components: int | None = None
    n_init: int = 20
    max_samples: int = 10_000
    eigen_solver: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("affinity", self.affinity, ["symmetric", "nearest_neighbors"])
        check_int("n_neighbors", self.n_neighbors, minimum=1)
        if self.n_components is not None:
            check_int("n_components", self.n_components, minimum=1)
        check_int("n_init", self.n_init, minimum=1)
        check_int("max_samples", self.max_samples, minimum=2)
        check_eigen_solver(self.eigen_solver)


class _SelfExpressive(ClusterEstimator):
    """Shared tail of the self-expressive baselines: sparse C → affinity → spectral step.

    Subclasses compute ``representation_matrix_`` (N × N CSR, row convention x_i ≈ Σ_j c_ij x_j,
    zero diagonal) and predict new points by the coefficient vote over the training dictionary.
    """

    affinity: str
    n_neighbors: int
    n_components: int | None
    n_init: int
    max_samples: int
    eigen_solver: str

    def _check_size(self, n: int) -> None:
        if n > self.max_samples:
            raise ValueError(
                f"{type(self).__name__} with {n} samples exceeds max_samples={self.max_samples} "
                "(time grows as N²); subsample, raise max_samples, or use SENet"
            )

    def _finish_fit(self, C: sp.csr_matrix) -> None:
        n = C.shape[0]
        self.representation_matrix_ = C
        self.affinity_matrix_ = affinity_from_coefficients(C, self.affinity, min(self.n_neighbors, n - 1))
        nc = self.n_clusters if self.n_components is None else min(self.n_components, n)
        self.labels_ = spectral_labels(
            self.affinity_matrix_,
            self.n_clusters,
            n_components=nc,
            n_init=self.n_init,
            solver=self.eigen_solver,
            random_state=rng_seed(self.random_state),
        )


VOTE_BLOCK_ENTRIES = 1 << 24  # entries of |Q Xᵀ| per block of the fallback vote (128 MB in float64)


def _vote_with_fallback(C: sp.csr_matrix, Q: np.ndarray, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Coefficient vote; rows without any coefficient take the label of the most coherent point."""
    pred = coefficient_vote(C, labels, int(labels.max()) + 1)
    empty = np.flatnonzero(np.diff(C.indptr) == 0)
    rows = max(1, VOTE_BLOCK_ENTRIES // X.shape[0])  # |Q Xᵀ| in row blocks, never (#empty × N) at once
    for a in range(0, empty.size, rows):
        block = empty[a : a + rows]
        pred[block] = labels[np.abs(Q[block] @ X.T).argmax(axis=1)]
    return pred
