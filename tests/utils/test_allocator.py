import json
import subprocess
import sys

import pytest

from structlearn.utils import allocator

needs_glibc = pytest.mark.skipif(not allocator.is_supported(), reason="needs Linux with glibc")

# Allocate, touch and free a 40 MiB tensor repeatedly and count minor page faults, before and after
# tuning. 40 MiB is above the 32 MiB ceiling of glibc's adaptive mmap threshold, so untuned every block
# is mmap-ed and unmapped (fresh pages each time); tuned, the block comes from the heap and is recycled.
_PROBE = """
import json, resource, sys, torch
from structlearn.utils.allocator import tune_malloc

def faults(n=20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        torch.ones(40 * 1024 * 1024 // 4)  # 40 MiB, filled (pages touched), then freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults(2)
untuned = faults()
ok = tune_malloc()
faults(20)  # the first few tuned reallocations can still fault while the heap settles (seen: 8)
tuned = faults()
print(json.dumps({"untuned": untuned, "tuned": tuned, "ok": ok}))
"""


@needs_glibc
def test_tune_malloc_stops_page_faults_on_reallocation() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["ok"] is True
    # 20 × 40 MiB of fresh pages is ~200k faults untuned; recycled heap memory faults ~never.
    assert res["untuned"] > 20 * 40 * 256 // 2
    assert res["tuned"] < res["untuned"] / 10


@pytest.mark.parametrize("bad", [0, 1024, 1 << 31, 2.5, True, "1g"])
def test_tune_malloc_rejects_bad_threshold(bad: object) -> None:
    with pytest.raises(ValueError, match="threshold"):
        allocator.tune_malloc(bad)  # type: ignore[arg-type]


def test_tune_malloc_is_a_noop_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    assert allocator.is_supported() is False
    assert allocator.tune_malloc() is False
