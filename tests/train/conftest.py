from pathlib import Path

import pytest


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A deterministic ~12 kB text file (pseudo-random Python-like words)."""
    import random

    rng = random.Random(0)
    words = ["def", "class", "return", "self", "import", "for", "in", "if", "x", "(", ")", ":", "\n", "    "]
    path = tmp_path / "corpus.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(3000)))
    return path
