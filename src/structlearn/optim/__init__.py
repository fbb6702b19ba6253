"""Optimizers (SGDW, spectrally bounded wrappers), schedules and parameter-group rules."""
