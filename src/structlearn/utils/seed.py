"""One source of randomness per run: seed Python, NumPy and torch from a single integer."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global RNG and torch (CPU and CUDA)."""
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (2**32))  # noqa: NPY002 - third-party code reads the global RNG
    torch.manual_seed(int(seed))


def torch_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A dedicated torch.Generator so library code never consumes the global stream."""
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


SEED_MAX = 2**32 - 1  # the largest seed NumPy and scikit-learn accept
TORCH_SEED_MAX = 2**64 - 1  # the largest seed torch.Generator.manual_seed accepts


def rng_seed(random_state: int | np.random.RandomState | np.random.Generator | None) -> int:
    """Derive an integer seed from a scikit-learn style ``random_state``."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**31))
    if isinstance(random_state, bool):
        raise ValueError(f"random_state must be None, an int or a RandomState, got {random_state!r}")
    if isinstance(random_state, int | np.integer):
        if not 0 <= random_state <= SEED_MAX:  # NumPy/scikit-learn seeds stop at 2**32 - 1
            raise ValueError(f"random_state must be in [0, 2**32 - 1], got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a RandomState, got {type(random_state).__name__}")
