"""Base class for the clustering estimators: scikit-learn conventions in one place.

Subclasses declare their parameters once, in a frozen config dataclass (:class:`EstimatorConfig`
and its subclasses), from which the constructor is generated: it stores the arguments unchanged (so
``get_params``/``set_params``/``clone`` work). ``fit`` validates them once by building the config
(:meth:`_validate_params`) and calls :meth:`_validate_X` for every input array. Fitted attributes
end in ``_``: ``labels_``, ``n_features_in_``.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Callable
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


@dataclasses.dataclass(frozen=True)
class EstimatorConfig:
    """Base of an estimator's parameter dataclass: ``n_clusters``, validated in ``__post_init__``;
    subclasses add their fields and extend ``__post_init__`` (calling ``super()`` first)."""

    n_clusters: int

    def __post_init__(self) -> None:
        check_int("n_clusters", self.n_clusters, minimum=1)


def _init_from_config(config_cls: type, defaults: dict[str, Any]) -> Callable[..., None]:
    """An ``__init__(self, n_clusters, *, <config fields>, <extra>)`` that stores every argument
    unchanged (scikit-learn convention); ``defaults`` adds estimator-only parameters (``random_state``,
    ``verbose``) and overrides config defaults (``n_clusters``)."""
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    extra = [n for n in defaults if n not in fields]
    names = ["n_clusters", *(n for n in fields if n != "n_clusters"), *extra]
    for name in names:
        if name in defaults:
            default = defaults[name]
        elif fields[name].default is not dataclasses.MISSING:
            default = fields[name].default
        else:
            raise TypeError(f"{config_cls.__name__}.{name} needs a default for the estimator")
        kind = P.POSITIONAL_OR_KEYWORD if name == "n_clusters" else P.KEYWORD_ONLY
        annotation = fields[name].type if name in fields else P.empty
        params.append(P(name, kind, default=default, annotation=annotation))
    signature = inspect.Signature(params, return_annotation=None)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name in names:
            setattr(self, name, bound.arguments[name])

    init.__name__ = init.__qualname__ = "__init__"
    init.__signature__ = signature  # type: ignore[attr-defined]  # read by get_params and help()
    init.__doc__ = f"Store the parameters unchanged; {config_cls.__name__} declares and validates them."
    return init


class ClusterEstimator(ClusterMixin, BaseEstimator):
    """Common input handling for estimators taking ``n_clusters`` and ``random_state``.

    A subclass with a ``_config_class`` (a frozen dataclass whose ``__post_init__`` validates) and no
    ``__init__`` of its own gets a generated constructor: ``n_clusters`` (positional), then the
    config's fields as keyword-only parameters, then ``_init_defaults``' extra names (``random_state``,
    …). Every parameter is then declared once, in the config, and validated once, when ``fit`` builds it.
    """

    n_clusters: int
    random_state: Any

    # A frozen dataclass whose __post_init__ validates the parameters it names (every estimator here).
    _config_class: ClassVar[type | None] = None
    _init_defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_config_class") is not None and "__init__" not in cls.__dict__:
            cls.__init__ = _init_from_config(cls._config_class, cls._init_defaults)  # type: ignore[misc]

    def _validate_params(self) -> Any:
        """Check constructor arguments; subclasses extend this and call ``super()``. With a
        ``_config_class`` the config validates them all, once, and is returned for ``fit`` to use."""
        if self._config_class is not None:
            return self._config()
        check_int("n_clusters", self.n_clusters, minimum=1)
        return None

    def _check_feature_names(self, X: Any, *, reset: bool) -> None:
        """scikit-learn's convention for DataFrames: record string column names at fit
        (``feature_names_in_``); at predict, refuse other names or another order, and warn when names
        were recorded but X has none. Columns that are not all strings record nothing."""
        cols = getattr(X, "columns", None)
        names = np.asarray(cols, dtype=object) if cols is not None else None
        if names is not None and not all(isinstance(c, str) for c in names):
            names = None
        if reset:
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is None:
            return
        if names is None:
            warnings.warn(
                f"X has no feature names, but {type(self).__name__} was fitted with feature names",
                UserWarning,
                stacklevel=4,
            )
        elif not np.array_equal(names, fitted):
            diff = next((f"{a!r} (fit) vs {b!r}" for a, b in zip(fitted, names, strict=False) if a != b), "")
            raise ValueError(
                f"the feature names differ from those seen in fit ({len(fitted)} columns): "
                f"{diff or f'{len(names)} columns'}; pass the columns in the order of fit"
            )

    def _validate_X(self, X: Any, *, reset: bool, dtype: type = np.float32) -> np.ndarray:
        """Validate features; on ``reset`` (fit) record ``n_features_in_``, else compare against it."""
        name = type(self).__name__
        self._check_feature_names(X, reset=reset)
        if reset:
            arr = check_features(
                X,
                min_samples=max(int(self.n_clusters), 2),
                min_samples_reason=f"n_clusters={self.n_clusters}" if int(self.n_clusters) >= 2 else None,
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
