"""Operations on a per-frame segmentation: short-segment removal and label alignment.

Shared by TR2C (its optional ``min_segment`` post-processing), the ``structlearn segment`` command and
the TR2C benchmark. A segmentation is a 1-D integer label per frame, in time order; its coloured-bar
figure is :func:`structlearn.cluster.plots.plot_segmentation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics.cluster import contingency_matrix

from structlearn.utils.validation import check_int, check_labels


def remove_short_segments(labels: Any, min_length: int) -> np.ndarray:
    """Merge every run of equal labels shorter than ``min_length`` frames into a neighbouring run.

    Post-processing for segmentations (off by default in TR2C, reported separately). Each pass
    relabels the runs that are short and strictly shorter than both neighbours (ties broken by
    position, so two neighbouring runs never swap labels), giving each the label of its longer
    neighbour; passes repeat until no run is short or one run is left. Vectorised over runs.
    """
    arr = np.asarray(labels)
    y = check_labels(arr, arr.shape[0] if arr.ndim else 0, name="labels")
    if y.size == 0:
        raise ValueError("labels is empty")
    n = check_int("min_length", min_length, minimum=1)
    change = np.flatnonzero(y[1:] != y[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [y.size]]))
    labs = y[starts]
    while lengths.size > 1:
        short = lengths < n
        if not short.any():
            break
        R = lengths.size
        key = lengths * R + np.arange(R)  # unique total order: length, then position
        big = np.iinfo(np.int64).max
        left_key = np.concatenate([[big], key[:-1]])
        right_key = np.concatenate([key[1:], [big]])
        pick = short & (key < left_key) & (key < right_key)
        left_len = np.concatenate([[-1], lengths[:-1]])
        right_len = np.concatenate([lengths[1:], [-1]])
        idx = np.flatnonzero(pick)
        take_left = left_len[idx] >= right_len[idx]
        labs = labs.copy()
        labs[idx] = np.where(take_left, labs[np.maximum(idx - 1, 0)], labs[np.minimum(idx + 1, R - 1)])
        # Merge neighbouring runs that now share a label.
        first = np.concatenate([[True], labs[1:] != labs[:-1]])
        group = np.cumsum(first) - 1
        lengths = np.bincount(group, weights=lengths).astype(np.int64)
        labs = labs[first]
    return np.repeat(labs, lengths)


def align_labels(y_true: Any, y_pred: Any) -> np.ndarray:
    """``y_pred`` renamed so that clusters matched to classes by the Hungarian algorithm carry the
    class id (for plotting in matching colours); unmatched clusters get ids after the largest class."""
    yt = check_labels(y_true, len(y_true), name="y_true")
    yp = check_labels(y_pred, yt.shape[0], name="y_pred")
    classes, clusters = np.unique(yt), np.unique(yp)
    M = contingency_matrix(yt, yp)  # rows: classes, columns: clusters (sorted unique values)
    rows, cols = linear_sum_assignment(-M)
    mapping = np.full(clusters.size, -1, dtype=np.int64)
    mapping[cols] = classes[rows]
    spare = np.flatnonzero(mapping < 0)
    mapping[spare] = classes.max() + 1 + np.arange(spare.size)
    return mapping[np.searchsorted(clusters, yp)]
