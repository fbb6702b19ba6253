"""Scikit-learn-style clustering estimators and the shared pieces they are built from.

Estimators (each takes ``n_clusters`` and ``random_state``): :class:`KMeansClustering`,
:class:`SpectralKNN`. :func:`make_estimator` builds any registered method by name.
"""

from structlearn.cluster.baselines import KMeansClustering, SpectralKNN
from structlearn.cluster.metrics import evaluate
from structlearn.cluster.registry import available_methods, make_estimator

__all__ = [
    "KMeansClustering",
    "SpectralKNN",
    "available_methods",
    "evaluate",
    "make_estimator",
]
