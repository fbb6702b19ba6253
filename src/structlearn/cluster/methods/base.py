"""Base class for the clustering estimators: scikit-learn conventions in one place.

Subclasses store their constructor arguments unchanged (so ``get_params``/``set_params``/``clone``
work), validate them in ``fit`` via :meth:`_validate_params`, and call :meth:`_validate_X` for every
input array. Fitted attributes end in ``_``: ``labels_``, ``n_features_in_``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from structlearn.utils.validation import check_features, check_int


def check_layer_widths(hidden_dims: tuple[int, ...], *, allow_empty: bool = False) -> None:
    """``hidden_dims`` of a config: positive ints, at least one unless ``allow_empty`` (no hidden layer)."""
    if not allow_empty and len(hidden_dims) == 0:
        raise ValueError("hidden_dims must list at least one layer width")
    for i, h in enumerate(hidden_dims):
        check_int(f"hidden_dims[{i}]", h, minimum=1)


class ClusterEstimator(ClusterMixin, BaseEstimator):
    """Common input handling for estimators taking ``n_clusters`` and ``random_state``."""

    n_clusters: int
    random_state: Any

    # A frozen dataclass whose __post_init__ validates the parameters it names (PRO-DSC, NeuNcut, TR2C).
    _config_class: ClassVar[type | None] = None

    def _validate_params(self) -> Any:
        """Check constructor arguments; subclasses extend this and call ``super()``. With a
        ``_config_class`` the config validates them all, once, and is returned for ``fit`` to use."""
        if self._config_class is not None:
            return self._config()
        check_int("n_clusters", self.n_clusters, minimum=1)
        return None

    def _validate_X(self, X: Any, *, reset: bool, dtype: type = np.float32) -> np.ndarray:
        """Validate features; on ``reset`` (fit) record ``n_features_in_``, else compare against it."""
        name = type(self).__name__
        if reset:
            arr = check_features(
                X,
                min_samples=max(int(self.n_clusters), 2),
                min_samples_reason=f"n_clusters={self.n_clusters}",
                dtype=dtype,
                estimator=name,
            )
            self.n_features_in_ = arr.shape[1]
            return arr
        check_is_fitted(self)
        return check_features(
            X, n_features=self.n_features_in_, dtype=dtype, reject_constant=False, estimator=name
        )

    def _config(self) -> Any:
        """The validated dataclass config built from the parameters named by ``_config_class``'s
        fields (``hidden_dims``: an int becomes a 1-tuple)."""
        cls = self._config_class
        if cls is None:
            raise TypeError(f"{type(self).__name__} has no _config_class")
        params = {f.name: getattr(self, f.name) for f in dataclasses.fields(cls)}
        if "hidden_dims" in params:
            hd = params["hidden_dims"]
            if isinstance(hd, int | np.integer) and not isinstance(hd, bool):
                hd = (hd,)
            try:
                params["hidden_dims"] = tuple(hd)
            except TypeError:
                raise ValueError(f"hidden_dims must be a sequence of layer widths, got {hd!r}") from None
        return cls(**params)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
