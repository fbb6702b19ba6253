from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.neighbors import kneighbors_graph

from structlearn.cluster.graph.spectral import spectral_clustering
from structlearn.cluster.metrics import clustering_accuracy
from structlearn.data.sequences import (
    MotionSequenceConfig,
    load_feature_sequence,
    load_feature_sequences,
    make_motion_sequence,
    make_motion_sequences,
    segments_from_labels,
)

SMALL = MotionSequenceConfig(n_frames=300, n_motions=3, n_segments=6, ambient_dim=24, min_segment=20)


def test_layout_lengths_recurrence_and_shapes() -> None:
    seq = make_motion_sequence(SMALL, seed=3)
    assert seq.X.shape == (300, 24) and seq.X.dtype == np.float32 and np.isfinite(seq.X).all()
    assert seq.y.shape == (300,) and seq.y.dtype == np.int64
    seg = seq.segments
    assert seg.shape == (6, 3)
    assert seg[0, 0] == 0 and seg[-1, 1] == 300 and np.array_equal(seg[1:, 0], seg[:-1, 1])
    lengths = seg[:, 1] - seg[:, 0]
    assert lengths.min() >= 20 and np.unique(lengths).size > 1  # varying lengths
    motions = seg[:, 2]
    assert set(motions.tolist()) == {0, 1, 2}  # every motion appears ...
    assert np.all(motions[1:] != motions[:-1])  # ... consecutive segments differ, so 6 > 3 recur
    assert np.array_equal(segments_from_labels(seq.y), seg)


def test_seeded_and_independent() -> None:
    a = make_motion_sequences(2, SMALL, seed=7)
    b = make_motion_sequences(2, SMALL, seed=7)
    assert all(np.array_equal(x.X, z.X) and np.array_equal(x.y, z.y) for x, z in zip(a, b, strict=True))
    assert not np.allclose(a[0].X, a[1].X)
    assert not np.allclose(a[0].X, make_motion_sequences(1, SMALL, seed=8)[0].X)


def test_frames_change_smoothly_within_segments() -> None:
    cfg = MotionSequenceConfig(**{**SMALL.__dict__, "noise": 0.0})
    seq = make_motion_sequence(cfg, seed=1)
    step = np.linalg.norm(np.diff(seq.X, axis=0), axis=1)
    inside = seq.y[1:] == seq.y[:-1]
    rng = np.random.default_rng(0)
    random_pairs = np.linalg.norm(seq.X[rng.permutation(300)] - seq.X, axis=1)
    assert np.median(step[inside]) < 0.3 * np.median(random_pairs)


def _per_frame_acc(seq: object, k: int) -> tuple[float, float]:
    X, y = seq.X, seq.y  # type: ignore[attr-defined]
    km = KMeans(k, n_init=4, random_state=0).fit_predict(X)
    sc = spectral_clustering(kneighbors_graph(X, 10), k, random_state=0)
    return clustering_accuracy(y, km), clustering_accuracy(y, sc)


def test_difficulty_knob_defeats_per_frame_clustering() -> None:
    base = {**SMALL.__dict__, "n_frames": 360, "specific_dim": 16, "shared_dim": 16, "curvature": 3.0}
    easy = make_motion_sequence(MotionSequenceConfig(**{**base, "shared": 0.0}), seed=2)
    hard = make_motion_sequence(MotionSequenceConfig(**{**base, "shared": 0.9}), seed=2)
    _, sc_easy = _per_frame_acc(easy, 3)
    km_hard, sc_hard = _per_frame_acc(hard, 3)
    assert sc_easy > 0.9
    assert sc_hard < 0.7 and km_hard < 0.7


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shared": 1.0}, "shared must be < 1"),
        ({"n_segments": 2}, "n_segments must be >= 3"),
        ({"n_frames": 50}, "n_frames must be >= 120"),
        ({"period": (5.0, 2.0)}, "min <= max"),
        ({"noise": -1.0}, "noise must be >= 0"),
    ],
)
def test_bad_config(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MotionSequenceConfig(**{**SMALL.__dict__, **kwargs})


# ------------------------------------------------------------------------------------ loader


def test_load_npy_with_sibling_labels_npz_and_folder(tmp_path: Path) -> None:
    X = np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32)
    y = np.repeat([0, 1], 20)
    np.save(tmp_path / "a.npy", X)
    np.save(tmp_path / "a.labels.npy", y)
    np.savez(tmp_path / "b.npz", features=X[:30], labels=y[:30])
    np.save(tmp_path / "c.npy", X[:10])  # no labels
    Xa, ya = load_feature_sequence(tmp_path / "a.npy")
    assert np.array_equal(Xa, X) and np.array_equal(ya, y)
    Xb, yb = load_feature_sequence(tmp_path / "b.npz")
    assert Xb.shape == (30, 5) and yb is not None and yb.shape == (30,)
    assert load_feature_sequence(tmp_path / "c.npy")[1] is None
    # Explicit labels win over the sibling file.
    (tmp_path / "lab").mkdir()
    np.save(tmp_path / "lab" / "other.npy", np.zeros(40, dtype=np.int64))
    assert load_feature_sequence(tmp_path / "a.npy", tmp_path / "lab" / "other.npy")[1].sum() == 0
    names = [name for name, _, _ in load_feature_sequences(tmp_path)]
    assert names == ["a", "b", "c"]


def test_loader_bad_inputs(tmp_path: Path) -> None:
    X = np.ones((10, 3), dtype=np.float32)
    X[4, 1] = np.nan
    np.save(tmp_path / "nan.npy", X)
    with pytest.raises(ValueError, match=r"1 frames with NaN or infinite values \(frames 4\)"):
        load_feature_sequence(tmp_path / "nan.npy")
    np.save(tmp_path / "ok.npy", np.ones((10, 3)))
    np.save(tmp_path / "short.npy", np.zeros(9, dtype=np.int64))
    with pytest.raises(ValueError, match="has length 9 but there are 10 samples"):
        load_feature_sequence(tmp_path / "ok.npy", tmp_path / "short.npy")
    np.savez(tmp_path / "nokey.npz", something=np.ones((3, 3)))
    with pytest.raises(ValueError, match="no features array"):
        load_feature_sequence(tmp_path / "nokey.npz")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match=r"must be a \.npy or \.npz"):
        load_feature_sequence(tmp_path / "x.txt")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"junk\.npy"):
        load_feature_sequence(tmp_path / "junk.npy")
    with pytest.raises(FileNotFoundError):
        load_feature_sequence(tmp_path / "missing.npy")
    np.save(tmp_path / "one_d.npy", np.ones(5))
    with pytest.raises(ValueError, match="must be 2-D"):
        load_feature_sequence(tmp_path / "one_d.npy")
