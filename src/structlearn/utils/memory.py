"""Wall time and peak resident memory of a block of code, for benchmarks.

``ru_maxrss`` only ever grows over a process's life, so it cannot attribute a peak to one arm of a
benchmark. ``Measure`` samples the resident set size from ``/proc/self/statm`` in a background
thread (every ``interval`` seconds) and reports the peak above the level at entry. On CUDA it also
reports ``torch.cuda.max_memory_allocated``. The sampling thread is outside any hot path.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes() -> int:
    """Resident set size of this process now (Linux); falls back to ru_maxrss elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Measure:
    """Context manager: ``with Measure() as m: ...`` then ``m.seconds``, ``m.peak_mb``."""

    interval: float = 0.005
    seconds: float = 0.0
    peak_bytes: int = 0
    base_bytes: int = 0
    cuda_peak_bytes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _max_seen: int = field(default=0, repr=False)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._max_seen = max(self._max_seen, current_rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> Measure:
        self.base_bytes = current_rss_bytes()
        self._max_seen = self.base_bytes
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            self.cuda_peak_bytes = int(torch.cuda.max_memory_allocated())
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._max_seen = max(self._max_seen, current_rss_bytes())
        self.peak_bytes = self._max_seen - self.base_bytes

    @property
    def peak_mb(self) -> float:
        """Peak resident memory above the level at entry, in MiB."""
        return self.peak_bytes / 2**20
