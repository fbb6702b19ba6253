"""Transformer building blocks: norms, attention, and the block whose norm scheme is a config value."""
