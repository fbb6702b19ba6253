import numpy as np
import pytest

from structlearn.cluster.segmentation import align_labels, remove_short_segments


def test_remove_short_segments() -> None:
    y = np.array([0, 0, 0, 0, 1, 0, 0, 0, 2, 2, 2, 2, 2, 1, 1, 1, 1, 3])
    out = remove_short_segments(y, 3)
    assert out.tolist() == [0] * 8 + [2] * 5 + [1] * 5
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[-1], out, [-1]])) != 0))
    assert runs.min() >= 3
    assert np.array_equal(remove_short_segments(y, 1), y)
    alternating = np.array([0, 1] * 10)
    merged = remove_short_segments(alternating, 4)
    assert merged.size == 20 and np.unique(merged).size == 1
    with pytest.raises(ValueError, match="min_length must be >= 1"):
        remove_short_segments(y, 0)


def test_align_labels_renames_to_matched_classes() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    pred = np.array([5, 5, 5, 3, 3, 7, 9, 9])  # 5→0, 3→1, 9→2, 7 unmatched
    out = align_labels(y, pred)
    assert out.tolist() == [0, 0, 0, 1, 1, 3, 2, 2]
    with pytest.raises(ValueError, match="has length 2"):
        align_labels(y, [0, 1])
