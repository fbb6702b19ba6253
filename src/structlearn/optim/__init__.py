"""Optimizers (SGDW, spectrally bounded wrappers), schedules and parameter-group rules."""

from structlearn.optim.spectral_bound import AdamW2, SpectralBound

__all__ = ["AdamW2", "SpectralBound"]
