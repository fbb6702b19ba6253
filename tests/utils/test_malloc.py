import sys

import numpy as np
import pytest

from structlearn.utils.malloc import trim_heap


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim, /proc")
def test_trim_heap_returns_the_free_pages_between_live_blocks() -> None:
    # The pattern that grew SENet's resident set ~5 MB per step: once glibc's mmap threshold has risen,
    # MiB-sized blocks come from the heap, and the pages of freed blocks between live ones stay resident
    # until trimmed.
    import ctypes

    # Where glibc's threshold has not been raised yet in this process, raise it as a freed 32 MiB
    # block would (M_MMAP_THRESHOLD = -3), so the MiB blocks below come from the heap.
    ctypes.CDLL("libc.so.6").mallopt(-3, 32 * 2**20)
    before = _rss_mb()
    blocks = [np.ones(2**20, np.uint8) for _ in range(200)]
    keep = blocks[1::2]  # noqa: F841 — the live blocks that pin the heap's top
    del blocks
    held = _rss_mb() - before
    if held < 150:
        pytest.skip(f"this C library already returned the pages ({held:.0f} MB held)")
    assert trim_heap()
    assert _rss_mb() - before < held - 80  # the ~100 MB of freed blocks went back
