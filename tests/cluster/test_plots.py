from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from structlearn.cluster.plots import affinity_image, plot_affinity, plot_embedding_2d, plot_segmentation


def test_affinity_image_sorted_and_binned_without_densifying() -> None:
    y = np.array([1, 0, 1, 0])
    A = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=float))
    img = affinity_image(A, y)
    # Sorted by label: points (1, 3) then (0, 2) → block diagonal.
    np.testing.assert_allclose(img, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    binned = affinity_image(A, y, max_pixels=2)
    np.testing.assert_allclose(binned, [[0.5, 0], [0, 0.5]])
    # A large sparse matrix: the image is max_pixels² whatever N is.
    n = 200_000
    rng = np.random.default_rng(0)
    big = sp.csr_matrix((np.ones(1000), (rng.integers(0, n, 1000), rng.integers(0, n, 1000))), shape=(n, n))
    assert affinity_image(big, np.zeros(n, dtype=int), max_pixels=50).shape == (50, 50)


def test_png_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = rng.integers(0, 3, 300)
    p1 = plot_embedding_2d(X, y, tmp_path / "a" / "proj.png", max_points=100)
    p2 = plot_affinity(
        sp.random(300, 300, density=0.05, random_state=0), y, tmp_path / "aff.png", max_pixels=64
    )
    for p in (p1, p2):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="length"):
        plot_embedding_2d(X, y[:10], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_with_true_labels_both_figures_show_the_ground_truth_beside(tmp_path) -> None:
    """Issue 10 defect 7: with labels given, the projection is also coloured by the truth and the
    affinity sorted by the truth, so a wrong clustering looks wrong."""
    import matplotlib.image as mpimg
    import numpy as np
    import scipy.sparse as sp

    from structlearn.cluster.plots import plot_affinity, plot_embedding_2d

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y_true = np.repeat([0, 1, 2], 20)
    y_pred = rng.integers(0, 3, 60)  # a wrong clustering
    one = plot_embedding_2d(X, y_pred, tmp_path / "one.png")
    two = plot_embedding_2d(X, y_pred, tmp_path / "two.png", true_labels=y_true)
    assert mpimg.imread(two).shape[1] > 1.6 * mpimg.imread(one).shape[1]  # two panels side by side
    A = sp.csr_matrix(np.kron(np.eye(3), np.ones((20, 20))))  # block-diagonal along the true labels
    a2 = plot_affinity(A, y_pred, tmp_path / "a2.png", true_labels=y_true)
    assert (
        mpimg.imread(a2).shape[1] > 1.6 * mpimg.imread(plot_affinity(A, y_pred, tmp_path / "a1.png")).shape[1]
    )


def test_plot_segmentation_writes_png(tmp_path: Path) -> None:
    y = np.repeat([0, 1, 2, 1], 25)
    out = plot_segmentation([("true", y), ("pred", (y + 1) % 3)], tmp_path / "seg.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_segmentation([], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()
