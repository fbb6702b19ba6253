"""Name → estimator registry used by the CLI and the benchmarks.

Each entry maps a method name to ``"module:Class"``; the class is imported on first use, so adding a
method is one line here and a module whose optional pieces fail to import does not break the others.
Every registered class takes ``n_clusters`` and ``random_state`` and follows scikit-learn conventions.
"""

from __future__ import annotations

import ast
import importlib
from typing import Any

from structlearn.utils.validation import check_choice

ESTIMATORS: dict[str, str] = {
    "kmeans": "structlearn.cluster.methods.baselines:KMeansClustering",
    "spectral": "structlearn.cluster.methods.baselines:SpectralKNN",
    "ensc": "structlearn.cluster.methods.baselines:EnSC",
    "ssc-omp": "structlearn.cluster.methods.baselines:SSCOMP",
    "senet": "structlearn.cluster.methods.senet:SENet",
    "prodsc": "structlearn.cluster.methods.prodsc:PRODSC",
    "neuncut": "structlearn.cluster.methods.neuncut:NeuNcut",
    "tr2c": "structlearn.cluster.methods.tr2c:TR2C",
    "tsc": "structlearn.cluster.methods.tsc:TSC",
}


def available_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(ESTIMATORS)


def get_estimator_class(name: str) -> type:
    """The estimator class registered under ``name`` (one-line ValueError for unknown names)."""
    check_choice("method", name, available_methods())
    module_name, _, attr = ESTIMATORS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def make_estimator(name: str, n_clusters: int, random_state: Any = None, **params: Any) -> Any:
    """Construct ``name`` with ``n_clusters``, ``random_state`` and extra ``params``, validated now.

    Unknown parameter names and invalid values raise a one-line ValueError before any fitting.
    """
    cls = get_estimator_class(name)
    est = cls(n_clusters=n_clusters, random_state=random_state)
    valid = est.get_params(deep=False)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for method {name!r}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    est.set_params(**params)
    if hasattr(est, "_validate_params"):
        est._validate_params()
    return est


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` → (key, value); the value is a Python literal when it parses as one, else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"--param expects key=value, got {text!r}")
    raw = raw.strip()
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = {"none": None, "true": True, "false": False}.get(raw.lower(), raw)
    return key, value
