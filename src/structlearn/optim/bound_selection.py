"""Which parameters the spectral step bound acts on (arXiv 2505.21910; selection rules are ours).

``params`` of :class:`~structlearn.optim.spectral_bound.SpectralBound`: ``"matrices"`` (default: every
parameter that is a matrix after dropping leading size-1 dims), ``"all"`` (also vectors such as biases
and norm gains, bounded by their 2-norm), ``"attention"`` (names ending in wq/wk/wv/wo.weight), a
callable ``(name, param) -> bool``, or an explicit iterable of parameters and/or names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from structlearn.optim.bound_core import matrix_shape

BOUND_CHOICES = ("matrices", "all", "attention")
ATTENTION_NAME = re.compile(r"(?:^|\.)w[qkvo]\.weight$")

ParamSelection = str | Callable[[str, torch.Tensor], bool] | Iterable[torch.Tensor | str] | None


def named_flat_params(
    param_groups: list[dict[str, Any]], model: nn.Module | None
) -> list[tuple[str, torch.Tensor]]:
    """(name, parameter) in the optimizer's flat order; names from the groups' ``param_names`` (set when
    the optimizer was built from ``named_parameters()``), else from ``model``, else ``param<i>``."""
    model_names: dict[int, str] = {}
    if model is not None:
        model_names = {id(p): n for n, p in model.named_parameters()}
    out: list[tuple[str, torch.Tensor]] = []
    for g in param_groups:
        names = g.get("param_names")
        for j, p in enumerate(g["params"]):
            name = names[j] if names is not None else model_names.get(id(p), f"param{len(out)}")
            out.append((name, p))
    return out


def select_params(params: ParamSelection, flat: list[tuple[str, torch.Tensor]]) -> list[int]:
    """Sorted flat indices of the bounded parameters; a one-line ValueError on a bad selection."""
    named = any(not re.fullmatch(r"param\d+", n) for n, _ in flat)
    if params is None or isinstance(params, str):
        choice = "matrices" if params is None else params
        if choice == "matrices":
            return [i for i, (_, p) in enumerate(flat) if matrix_shape(p) is not None]
        if choice == "all":  # vectors too (biases, norm gains), bounded by their 2-norm
            return [i for i, (_, p) in enumerate(flat) if p.numel() > 0]
        if choice == "attention":
            if not named:
                raise ValueError(
                    "params='attention' needs parameter names: build the optimizer from "
                    "model.named_parameters() or pass model="
                )
            idx = [i for i, (n, p) in enumerate(flat) if ATTENTION_NAME.search(n) and p.numel() > 0]
            if not idx:
                raise ValueError("params='attention' matched no parameter named *.wq/wk/wv/wo.weight")
            return idx
        raise ValueError(
            f"params must be one of {', '.join(BOUND_CHOICES)}, a callable or a list; got {choice!r}"
        )
    if callable(params):
        return [i for i, (n, p) in enumerate(flat) if p.numel() > 0 and params(n, p)]
    by_id = {id(p): i for i, (_, p) in enumerate(flat)}
    by_name = {n: i for i, (n, _) in enumerate(flat)}
    chosen: list[int] = []
    try:
        items = list(params)
    except TypeError:
        kind = type(params).__name__
        raise ValueError(f"params must be a name, a callable or a list, got {kind}") from None
    for item in items:
        if isinstance(item, torch.Tensor):
            if id(item) not in by_id:
                raise ValueError(f"a bounded parameter of shape {tuple(item.shape)} is not in the optimizer")
            i = by_id[id(item)]
        elif isinstance(item, str):
            if item not in by_name:
                raise ValueError(f"bounded parameter name {item!r} is not in the optimizer")
            i = by_name[item]
        else:
            raise ValueError(f"params entries must be tensors or names, got {type(item).__name__}")
        if flat[i][1].numel() == 0:
            raise ValueError(f"bounded parameter {flat[i][0]!r} is empty")
        if i not in chosen:
            chosen.append(i)
    return sorted(chosen)
