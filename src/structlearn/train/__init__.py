"""Transformer training: the engine (loop, eval, resume, DDP) and atomic checkpoints."""
