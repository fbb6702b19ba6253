"""The one weight-decay rule of the library (spec dnt.md §1.4 and §7.1).

A parameter is decayed iff it is the weight (≥ 2-D) of an ``nn.Linear`` or ``nn.Conv*`` module — the
attention/FFN matrices, the ViT patch projection and the classifier — and is *not* also the weight of
an ``nn.Embedding``. Everything else is not decayed: norm gains (RMSNorm/LayerNorm/QK-norm), biases,
token and position embeddings, the class token, the positional table of the ViT, and therefore the
tied GPT LM head (it is the token embedding).

Why: with norms after them, the decayed matrices are scale-invariant, so weight decay acts as a
controller of their effective learning rate η/‖W‖² (van Laarhoven 2017; Li & Arora 2019); gains,
biases and embeddings are not scale-invariant and decaying them only shrinks the model's outputs.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from structlearn.utils.validation import check_float

DECAY_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _embedding_ids(model: nn.Module) -> set[int]:
    """ids of the ``nn.Embedding`` weights (a tied LM head is one of them)."""
    return {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}


def split_decay(model: nn.Module) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """(decay, no_decay) lists of (name, parameter), each trainable parameter exactly once."""
    decay_ids = {
        id(m.weight)
        for m in model.modules()
        if isinstance(m, DECAY_MODULES) and m.weight is not None and m.weight.dim() >= 2
    }
    decay_ids -= _embedding_ids(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # named_parameters() lists a tied tensor once
        if p.requires_grad:
            (decay if id(p) in decay_ids else no_decay).append((name, p))
    return decay, no_decay


def param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    lr: float | None = None,
    embedding_lr_scale: float = 1.0,
    gain_lr_scale: float = 1.0,
) -> list[dict[str, Any]]:
    """Optimizer groups: ``{"name": "decay", ..., "weight_decay": weight_decay}`` and
    ``{"name": "no_decay", ..., "weight_decay": 0.0}``; an empty group is left out.

    With ``embedding_lr_scale`` or ``gain_lr_scale`` ≠ 1 the undecayed parameters split into
    ``"embedding"`` (``nn.Embedding`` weights: GPT's token table, which is also its tied LM head, and
    position table) at ``lr · embedding_lr_scale`` and ``"no_decay"`` (norm gains, biases, a ViT's class
    token and position table) at ``lr · gain_lr_scale``. Why (issue 12, stop 30): with one SGDW
    learning rate for every tensor, the tied embedding steps too far and the gains too little
    (docs/dnt.md); AdamW's per-coordinate scaling hides both.
    """
    check_float("weight_decay", weight_decay, nonnegative=True)
    check_float("embedding_lr_scale", embedding_lr_scale, positive=True)
    check_float("gain_lr_scale", gain_lr_scale, positive=True)
    decay, no_decay = split_decay(model)
    groups = [{"name": "decay", "params": [p for _, p in decay], "weight_decay": float(weight_decay)}]
    if embedding_lr_scale == 1.0 and gain_lr_scale == 1.0:
        groups.append({"name": "no_decay", "params": [p for _, p in no_decay], "weight_decay": 0.0})
        return [g for g in groups if g["params"]]
    if lr is None:
        raise ValueError("param_groups needs lr when embedding_lr_scale or gain_lr_scale is not 1")
    base = check_float("lr", lr, positive=True)
    emb = _embedding_ids(model)
    groups += [
        {
            "name": "embedding",
            "params": [p for _, p in no_decay if id(p) in emb],
            "weight_decay": 0.0,
            "lr": base * embedding_lr_scale,
        },
        {
            "name": "no_decay",
            "params": [p for _, p in no_decay if id(p) not in emb],
            "weight_decay": 0.0,
            "lr": base * gain_lr_scale,
        },
    ]
    return [g for g in groups if g["params"]]
