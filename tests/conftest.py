"""Test-wide settings: one torch thread per xdist worker (CI has 2 cores), deterministic seeds."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)
# numpy/scipy BLAS (OpenBLAS) ignores torch's setting; two threads per xdist worker on two shared cores
# made a 1000×1000 eigh ~20× slower than one thread.
threadpool_limits(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
