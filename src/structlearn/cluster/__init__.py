"""Scikit-learn-style clustering estimators and the shared pieces they are built from.

Estimators (each takes ``n_clusters`` and ``random_state``): :class:`SENet`, :class:`KMeansClustering`,
:class:`SpectralKNN`, :class:`EnSC`, :class:`SSCOMP`. :func:`make_estimator` builds any registered
method by name (see :mod:`structlearn.cluster.registry`).
"""

from structlearn.cluster.baselines import SSCOMP, EnSC, KMeansClustering, SpectralKNN
from structlearn.cluster.metrics import evaluate
from structlearn.cluster.registry import available_methods, make_estimator
from structlearn.cluster.senet import SENet

__all__ = [
    "SSCOMP",
    "EnSC",
    "KMeansClustering",
    "SENet",
    "SpectralKNN",
    "available_methods",
    "evaluate",
    "make_estimator",
]
