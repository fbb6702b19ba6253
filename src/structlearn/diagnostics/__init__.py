"""Training diagnostics: gradient heavy-tail statistics, attention entropy and spectra, plots."""
