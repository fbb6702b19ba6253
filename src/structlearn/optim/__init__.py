"""Optimizers (SGDW, spectrally bounded wrappers), schedules and parameter-group rules."""

from structlearn.optim.spectral_bound import SGDW2, AdamW2, SpectralBound

__all__ = ["SGDW2", "AdamW2", "SpectralBound"]
