"""SiCL against the official code (MingkunLishigure/SiCL) and the trainer's diagnostic hook."""

import numpy as np
import pytest
import torch
from sklearn.cluster import DBSCAN

from structlearn.data.reid import make_reid_dataset
from structlearn.reid.jaccard import jaccard_distance
from structlearn.reid.pseudo_labels import assign_outliers
from structlearn.reid.trainer import ReIDConfig, train_reid


def _tiny_cc():
    torch.set_num_threads(1)
    return make_reid_dataset(24, 6, 6, n_cameras=3, outfits_per_id=2, seed=0)


def _record(store: dict):
    def hook(epoch: int, mems: dict[str, torch.Tensor]) -> None:
        store[epoch] = mems

    return hook


def test_epoch_hook_sees_the_clustered_memories_and_changes_nothing() -> None:
    ds = _tiny_cc()
    cfg = ReIDConfig(method="sicl", epochs=2, iters_per_epoch=3, k1=8, refinement=False, seed=0)
    seen: dict = {}
    res = train_reid(ds, cfg, on_epoch=_record(seen))
    assert sorted(seen) == [0, 1, 2]
    n = len(ds.train)
    assert set(seen[0]) == {"rgb", "mask", "fused"}
    assert all(v.shape[0] == n for v in seen[2].values())
    # The hook's RGB memory is exactly what the epoch clustered (refinement off: DBSCAN + singletons).
    for e in range(2):
        D = jaccard_distance(seen[e]["rgb"].numpy(), cfg.k1, cfg.k2)
        loose = DBSCAN(eps=res.eps, min_samples=cfg.min_samples, metric="precomputed").fit_predict(D)
        np.testing.assert_array_equal(res.label_history[e], assign_outliers(loose, "singleton"))
    # Diagnostics only: the same run without the hook is bit-identical.
    res0 = train_reid(ds, cfg)
    assert res0.history[-1]["mAP"] == res.history[-1]["mAP"]
    np.testing.assert_array_equal(res0.pseudo_labels, res.pseudo_labels)
    seen_c: dict = {}
    train_reid(ds, ReIDConfig(method="cacl", epochs=1, iters_per_epoch=2, k1=8), on_epoch=_record(seen_c))
    assert set(seen_c[0]) == {"rgb", "gray"}
    with pytest.raises(ValueError, match="on_epoch"):
        train_reid(ds, cfg, on_epoch=3)  # type: ignore[arg-type]
