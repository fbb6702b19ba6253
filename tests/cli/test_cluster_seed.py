"""`structlearn cluster --seed` reaches the estimator (issue 16, item 5: an injected bug that ignored
it went unnoticed)."""

from pathlib import Path

import numpy as np

from structlearn.cli import main


def _labels(X_path: Path, out: Path, seed: int) -> np.ndarray:
    # One k-means restart on structureless data: the result depends on the seed and only on it.
    code = main(
        ["cluster", str(X_path), "--method", "kmeans", "--n-clusters", "6", "--param", "n_init=1",
         "--seed", str(seed), "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    return np.load(out)


def test_seed_changes_the_result_and_fixes_it(tmp_path: Path) -> None:
    X = np.random.default_rng(0).uniform(size=(300, 5))
    np.save(tmp_path / "X.npy", X)
    a = _labels(tmp_path / "X.npy", tmp_path / "a.npy", 0)
    b = _labels(tmp_path / "X.npy", tmp_path / "b.npy", 0)
    c = _labels(tmp_path / "X.npy", tmp_path / "c.npy", 1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
