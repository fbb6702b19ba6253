"""mmseg-convention segmentation metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from structlearn.diagnostics.segmentation import SegMetrics, segmentation_metrics


def test_hand_computed_case_with_ignore() -> None:
    label = np.array([[0, 0, 1, 255], [1, 1, 2, 2]])
    pred = np.array([[0, 1, 1, 2], [1, 0, 2, 0]])
    # counted pixels (ignore dropped): pairs (y,p) = (0,0) (0,1) (1,1) (1,1) (1,0) (2,2) (2,0)
    # class 0: I=1, pred 3, label 2 → U=4; class 1: I=2, pred 3, label 3 → U=4;
    # class 2: I=1, pred 1, label 2 → U=2
    m = segmentation_metrics(pred, label, 3)
    assert m["IoU"] == pytest.approx([1 / 4, 2 / 4, 1 / 2])
    assert m["mIoU"] == pytest.approx((0.25 + 0.5 + 0.5) / 3)
    assert m["aAcc"] == pytest.approx(4 / 7)
    assert m["mAcc"] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)


def test_dataset_level_not_per_image_mean() -> None:
    # image A: class 1 tiny and missed; image B: class 1 large and hit. Per-image mean ≠ pooled histogram.
    a_y, a_p = np.array([[0, 0, 0, 1]]), np.array([[0, 0, 0, 0]])
    b_y, b_p = np.array([[1, 1, 1, 0]]), np.array([[1, 1, 1, 0]])
    m = SegMetrics(2)
    m.update(a_p, a_y)
    m.update(b_p, b_y)
    r = m.compute()
    # pooled: class 0 I=4, U=5; class 1 I=3, U=4
    assert r["IoU"] == pytest.approx([4 / 5, 3 / 4])
    per_image = (np.mean([3 / 4, 0.0]) + np.mean([1.0, 1.0])) / 2
    assert r["mIoU"] != pytest.approx(per_image)


def test_absent_class_is_nan_and_skipped() -> None:
    r = segmentation_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), 3)
    assert math.isnan(r["IoU"][2])
    assert r["mIoU"] == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_all_ignored_gives_nan() -> None:
    r = segmentation_metrics(np.array([0, 1]), np.array([255, 255]), 2)
    assert math.isnan(r["mIoU"]) and math.isnan(r["aAcc"])


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="sizes differ"):
        segmentation_metrics(np.zeros(3), np.zeros(4), 2)
    with pytest.raises(ValueError, match="labels must be"):
        segmentation_metrics(np.zeros(2), np.array([0, 5]), 2)
    with pytest.raises(ValueError, match="predictions must be"):
        segmentation_metrics(np.array([0, 7]), np.zeros(2), 2)
