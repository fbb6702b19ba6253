"""Training diagnostics: gradient heavy-tail statistics, attention entropy and spectra, plots."""

from structlearn.diagnostics.gradients import STAT_KEYS, gradient_histogram, gradient_stats

__all__ = ["STAT_KEYS", "gradient_histogram", "gradient_stats"]
