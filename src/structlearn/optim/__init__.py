"""Optimizers (SGDW, spectrally bounded wrappers), schedules and parameter-group rules."""

from structlearn.optim.factory import OPTIMIZERS, make_optimizer, optimizer_state_bytes
from structlearn.optim.param_groups import param_groups, split_decay
from structlearn.optim.schedules import lr_multiplier, make_scheduler
from structlearn.optim.sgdw import SGDW
from structlearn.optim.spectral_bound import SGDW2, AdamW2, SpectralBound

__all__ = [
    "OPTIMIZERS",
    "SGDW",
    "SGDW2",
    "AdamW2",
    "SpectralBound",
    "lr_multiplier",
    "make_optimizer",
    "make_scheduler",
    "optimizer_state_bytes",
    "param_groups",
    "split_decay",
]
