from pathlib import Path

import pytest

# The smallest real models: one block, width 16, two heads.
TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A deterministic ~12 kB text file (pseudo-random Python-like words)."""
    import random

    rng = random.Random(0)
    words = ["def", "class", "return", "self", "import", "for", "in", "if", "x", "(", ")", ":", "\n", "    "]
    path = tmp_path / "corpus.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(3000)))
    return path
