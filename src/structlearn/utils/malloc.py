"""Return the C heap's free pages to the system during long CPU training loops (glibc).

glibc serves a request above its mmap threshold (128 KiB at start) with ``mmap`` and unmaps it on
``free``, but raises the threshold to the size of each mmapped block freed (up to 32 MiB), so the
tensors of a few MiB that a training step allocates and frees then come from the heap, whose freed
pages are kept. Measured on SENet (20,000 training points, one thread): the resident set grew ~5 MB per
step — 394 MB at step 0, 1,621 MB at step 250, 8.7 GB over a 2,000-step fit. ``malloc_trim(0)`` every
50 steps keeps it at ~445 MB at no measurable cost (300 steps: 64.6 s vs 64.9 s), where fixing the
threshold (``MALLOC_MMAP_THRESHOLD_``) also kept it flat but made the steps 1.5× slower (every large
tensor a fresh ``mmap``). Elsewhere than glibc :func:`trim_heap` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any


@functools.cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def trim_heap() -> bool:
    """Return the heap's free pages to the system (glibc ``malloc_trim(0)``); False where unavailable
    or when nothing was released."""
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False
