"""scikit-learn's estimator checks on every estimator, with small settings so they run in seconds.

Exemptions (also listed in docs/clustering.md):
- SSCOMP / check_clustering: the check clusters three Gaussian blobs in R². Blobs are not a union of
  linear subspaces and in R² every point is an exact combination of any two others, so a sparse
  self-expressive method has no signal there (ARI < 0.4 is expected, not a bug).
- SENet passed check_clustering only by chance while its affinity was the paper's 3-NN graph over C's
  rows (4 components for 3 blobs, tied eigenvectors); with the 20-NN graph it uses on small sets
  (issue 10) it passes and is no longer exempt.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from structlearn.cluster import SSCOMP, EnSC, KMeansClustering, SENet, SpectralKNN

ESTIMATORS = [
    KMeansClustering(3, n_init=2),
    SpectralKNN(3, n_neighbors=5, n_init=2),
    EnSC(3, support_size=10, max_outer_iter=3, n_init=2),
    SSCOMP(3, n_nonzero=3, n_init=2),
    SENet(3, hidden_dims=(8,), out_dim=8, n_iter=5, top_k=10, n_init=2),
]

EXPECTED_FAILURES = {
    "SSCOMP": {"check_clustering": "blobs in R² are not a union of subspaces (see module docstring)"},
}


def _expected(est) -> dict[str, str]:
    return EXPECTED_FAILURES.get(type(est).__name__, {})


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning", "ignore::FutureWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected)
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)
