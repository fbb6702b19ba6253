"""Keep freed tensor memory in the process instead of handing it back to the OS every step (glibc).

PyTorch's CPU allocator calls ``malloc``/``free`` directly. With glibc's defaults, a block above the
(dynamic) mmap threshold is ``mmap``-ed and ``munmap``-ed on free, and the top of the heap is trimmed
back to the OS once 128 KiB or more are free; the next training step then touches fresh pages and pays
a minor page fault per 4 KiB page. On the 2-core benchmark machine this was 2,000–5,500 faults and
4–10 ms of system time per ViT step (d = 64, batch 128), charged most to the models with the most
intermediate tensors: the DNT/Pre-LN step-time ratio of that ViT was 1.101 (median of 5 processes,
range 1.031–1.106) with glibc's defaults and 1.078 (1.028–1.095) tuned
(``benchmarks/results/dnt_step/step_time_repeats.md``). PyTorch's CPU tuning guide recommends
jemalloc/tcmalloc for the same reason; :func:`tune_malloc` gets that effect from glibc itself through
``mallopt``: a fixed mmap
threshold of 1 GiB (blocks below it come from the reusable heap) and a trim threshold of 1 GiB. The
cost: the resident set stays at the process's peak instead of shrinking between steps, which is where a
training loop returns every step anyway. Settings are process-wide and cannot be undone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
DEFAULT_THRESHOLD = 1 << 30  # 1 GiB: larger blocks (rare in these models) still go to mmap


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - present only in glibc (musl has mallopt as a no-op stub)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def is_supported() -> bool:
    """True where :func:`tune_malloc` can act (Linux with glibc)."""
    return _glibc() is not None


def tune_malloc(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold`` bytes; False (and no-op) elsewhere.

    Returns True when both settings were accepted. ``threshold`` must be in [1 MiB, 2 GiB).
    """
    valid_int = isinstance(threshold, int) and not isinstance(threshold, bool)
    if not valid_int or not (1 << 20) <= threshold < (1 << 31):
        raise ValueError(f"threshold must be an int in [1 MiB, 2 GiB), got {threshold!r}")
    libc = _glibc()
    if libc is None:
        return False
    ok_mmap = libc.mallopt(_M_MMAP_THRESHOLD, threshold) == 1
    ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, threshold) == 1
    return ok_mmap and ok_trim
