"""Muon for the hidden weight matrices + AdamW for everything else, as one optimizer.

Muon (K. Jordan et al., 2024; KellerJordan/modded-nanogpt and the blog "Muon: An optimizer for hidden
layers in neural networks"): Nesterov momentum, then the update is orthogonalised by 5 quintic
Newton–Schulz iterations with coefficients (3.4445, −4.7750, 2.0315). Its authors prescribe it for the
2-D *hidden* weights only; embeddings, the (tied) output head, norm gains and biases are trained with
AdamW. This class pairs ``torch.optim.Muon`` (the hidden matrices) with ``torch.optim.AdamW`` (the rest)
so that the training engine, LR schedulers (``param_groups`` are the two optimizers' groups, each
with its own base LR) and checkpoints see one optimizer.

Split rule (:func:`split_muon_params`): a parameter goes to Muon iff it is exactly 2-D and sits in a
decayed group of :func:`structlearn.optim.param_groups.param_groups` (the ``nn.Linear`` weights); the
token/position embeddings and the tied LM head are ``nn.Embedding`` weights and go to AdamW.

Optimizer state: one momentum buffer per Muon matrix (4 bytes per fp32 parameter) and AdamW's two
buffers for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from structlearn.utils.validation import check_float


def split_muon_params(params: Iterable[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Muon groups, AdamW groups) from parameters or param-group dicts (see the module docstring).

    Plain tensors (no groups) go to Muon when they are 2-D, else to AdamW.
    """
    items = list(params)
    groups = items if items and isinstance(items[0], dict) else [{"params": items, "name": "decay"}]
    muon, adamw = [], []
    for g in groups:
        rest = {k: v for k, v in g.items() if k != "params"}
        ps = [p[1] if isinstance(p, tuple) else p for p in g["params"]]
        hidden = [p for p in ps if p.dim() == 2 and g.get("name", "decay") == "decay"]
        other = [p for p in ps if not (p.dim() == 2 and g.get("name", "decay") == "decay")]
        if hidden:
            muon.append({**rest, "params": hidden})
        if other:
            adamw.append({**rest, "params": other})
    return muon, adamw


class MuonAdamW(Optimizer):
    """``torch.optim.Muon`` on the hidden matrices, ``torch.optim.AdamW`` on the rest.

    Args:
        params: parameters or param-group dicts (split by :func:`split_muon_params`).
        lr: Muon's learning rate (``adjust_lr_fn`` None = torch's "original" per-shape scaling).
        momentum: Muon's (Nesterov) momentum, default 0.95.
        weight_decay: decoupled weight decay of the Muon matrices (W ← (1 − lr·wd)·W).
        adam_lr, betas, eps: AdamW's settings for the other parameters (their groups' own
            ``weight_decay`` applies; the library's groups give them none).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.02,
        momentum: float = 0.95,
        weight_decay: float = 0.0,
        *,
        adam_lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        nesterov: bool = True,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        check_float("lr", lr, positive=True)
        check_float("adam_lr", adam_lr, positive=True)
        check_float("weight_decay", weight_decay, nonnegative=True)
        muon_groups, adam_groups = split_muon_params(params)
        if not muon_groups:
            raise ValueError("MuonAdamW found no 2-D hidden weight matrix for Muon (use AdamW instead)")
        for g in muon_groups:
            g["weight_decay"] = weight_decay
        inner: list[Any] = [
            torch.optim.Muon(
                muon_groups,
                lr=lr,
                weight_decay=weight_decay,
                momentum=momentum,
                nesterov=nesterov,
                ns_steps=ns_steps,
                adjust_lr_fn=adjust_lr_fn,
            )
        ]
        if adam_groups:
            for g in adam_groups:
                g.pop("lr", None)
            inner.append(torch.optim.AdamW(adam_groups, lr=adam_lr, betas=betas, eps=eps, foreach=True))
        all_params = [p for o in inner for g in o.param_groups for p in g["params"]]
        super().__init__(all_params, {"lr": lr})
        self.optimizers = inner
        # The LR scheduler edits these dicts: they are the inner optimizers' own groups.
        self.param_groups = [g for o in inner for g in o.param_groups]

    @property  # type: ignore[override]
    def state(self) -> dict[Any, Any]:
        """Merged per-parameter state of both optimizers (read-only view, e.g. for state bytes)."""
        merged: dict[Any, Any] = {}
        for o in self.__dict__.get("optimizers", ()):
            merged.update(o.state)
        return merged

    @state.setter
    def state(self, value: Any) -> None:  # the base __init__ assigns an empty state; ignore it
        pass

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for o in self.optimizers:
            o.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {"muon_adamw": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        parts = state_dict.get("muon_adamw") if isinstance(state_dict, dict) else None
        if not isinstance(parts, list) or len(parts) != len(self.optimizers):
            raise ValueError("state dict was not saved by MuonAdamW with the same parameter split")
        for o, sd in zip(self.optimizers, parts, strict=True):
            o.load_state_dict(sd)
        self.param_groups = [g for o in self.optimizers for g in o.param_groups]
