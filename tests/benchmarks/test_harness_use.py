"""Every benchmark uses the one harness (structlearn.utils.harness) and builds its GPT/ViT with the
library's builder (train.components.build_model), never its own copy (issue 16, item 3)."""

import re
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_uses_the_harness_and_the_one_model_builder(path: Path) -> None:
    src = path.read_text(encoding="utf-8")
    assert "structlearn.utils.harness import" in src
    assert "structlearn.utils.report import" not in src  # report helpers come through the harness
    assert not re.search(r"(?<![\w.])(GPT|ViT)Config\(", src), "use train.components.build_model"
    assert not re.search(r"^def log\(", src, re.M), "log with structlearn.utils.harness.log / make_log"
