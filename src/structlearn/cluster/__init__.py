"""Scikit-learn-style clustering estimators and the shared pieces they are built from.

Estimators (each takes ``n_clusters`` and ``random_state``): :class:`SENet`, :class:`PRODSC`,
:class:`NeuNcut`, :class:`KMeansClustering`, :class:`SpectralKNN`, :class:`EnSC`, :class:`SSCOMP`,
:class:`TR2C` and :class:`TSC` (the last two segment one sequence of frames in time order).
:func:`make_estimator` builds any registered method by name (see :mod:`structlearn.cluster.registry`).
"""

from structlearn.cluster.methods.baselines import SSCOMP, EnSC, KMeansClustering, SpectralKNN
from structlearn.cluster.methods.neuncut import NeuNcut
from structlearn.cluster.methods.prodsc import PRODSC
from structlearn.cluster.methods.senet import SENet
from structlearn.cluster.methods.tr2c import TR2C
from structlearn.cluster.methods.tsc import TSC
from structlearn.cluster.metrics import evaluate
from structlearn.cluster.registry import available_methods, make_estimator

__all__ = [
    "PRODSC",
    "SSCOMP",
    "TR2C",
    "TSC",
    "EnSC",
    "KMeansClustering",
    "NeuNcut",
    "SENet",
    "SpectralKNN",
    "available_methods",
    "evaluate",
    "make_estimator",
]
