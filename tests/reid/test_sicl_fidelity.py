"""SiCL against the official code (MingkunLishigure/SiCL) and the trainer's diagnostic hook."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.cluster import DBSCAN

from structlearn.data.reid import make_reid_dataset
from structlearn.reid.jaccard import jaccard_distance
from structlearn.reid.pseudo_labels import assign_outliers
from structlearn.reid.refine import refine_labels
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


def test_sicl_refines_its_clusters_as_every_official_command_does() -> None:
    # run_code.sh passes --cr for every dataset: CACL's refinement (tight eps = eps − eps_gap) on M_rgb.
    ds = _tiny_cc()
    cfg = ReIDConfig(method="sicl", epochs=2, iters_per_epoch=3, k1=8, seed=0)
    assert cfg.refinement
    seen: dict = {}
    res = train_reid(ds, cfg, on_epoch=_record(seen))
    changed = False
    for e in range(2):
        D = jaccard_distance(seen[e]["rgb"].numpy(), cfg.k1, cfg.k2)
        loose = DBSCAN(eps=res.eps, min_samples=cfg.min_samples, metric="precomputed").fit_predict(D)
        tight = DBSCAN(eps=res.eps - cfg.eps_gap, min_samples=cfg.min_samples, metric="precomputed")
        want = refine_labels(D, loose, tight.fit_predict(D))
        np.testing.assert_array_equal(res.label_history[e], want)
        changed |= not np.array_equal(want, assign_outliers(loose, "singleton"))
        assert "refined_frac" in res.history[e]
    assert changed  # the test data exercises the refinement (else it could not tell the two apart)


def test_knn_loss_is_the_official_product_of_batch_means() -> None:
    from structlearn.reid.sicl import knn_loss

    # s in {0, 1}: Bernoulli(s) = s, so the value is deterministic.
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 4.0, 1.0]])
    nb = torch.tensor([[1], [2]])
    s = torch.tensor([[1.0], [0.0]])
    nll = -torch.log_softmax(logits, dim=1).gather(1, nb)[:, 0]  # (2,)
    want = nll.mean() * s.mean() / 2  # hm.py: F.nll_loss (batch mean) · mean(s·Bernoulli(s)) / (k + 1)
    got = knn_loss(logits, nb, s, torch.Generator().manual_seed(0))
    assert torch.isclose(got, want)
    assert not torch.isclose(got, (nll * s[:, 0]).mean() / 2)  # the per-sample weighting differs here


def test_silhouette_view_draws_its_own_augmentation() -> None:
    from structlearn.reid.trainer import _augment_views

    # Left-right asymmetric images: a flip is visible. Shift off: only the flips differ.
    x = torch.zeros(64, 3, 4, 4)
    x[..., 0] = 1.0
    sil = x[:, :1].clone()
    cfg = ReIDConfig(augment_shift=0)
    a, b = _augment_views(x, sil, cfg, torch.Generator().manual_seed(0))
    flipped_x, flipped_s = a[:, 0, 0, 0] == 0, b[:, 0, 0, 0] == 0
    assert flipped_x.any() and flipped_s.any()
    assert (flipped_x != flipped_s).any()  # independent draws (the official loader's two transforms)


def test_time_spent_in_the_hook_is_left_out_of_the_wall_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import structlearn.reid.trainer as trainer

    clock = [0.0]  # a clock that only the hook advances: the method's own time reads as 0
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: clock[0])

    def slow_hook(epoch: int, mems: dict[str, torch.Tensor]) -> None:
        clock[0] += 100.0

    cfg = ReIDConfig(method="sicl", epochs=2, iters_per_epoch=2, k1=8, seed=0)
    res = train_reid(_tiny_cc(), cfg, on_epoch=slow_hook)
    assert clock[0] == 300.0 and res.seconds == 0.0


@pytest.mark.parametrize("on", ["mask", "fused", "rgb+mask"])
def test_sicl_cluster_on_takes_the_labels_from_the_chosen_memory(on: str) -> None:
    # Our extension (not in the official code): the pseudo-labels from M_mask, M_fus or M_rgb with M_mask.
    ds = _tiny_cc()
    cfg = ReIDConfig(method="sicl", epochs=2, iters_per_epoch=2, k1=8, seed=0, cluster_on=on)
    seen: dict = {}
    res = train_reid(ds, cfg, on_epoch=_record(seen))
    e = 1
    if on == "rgb+mask":
        f = torch.cat([F.normalize(seen[e]["rgb"], dim=1), F.normalize(seen[e]["mask"], dim=1)], 1) / 2**0.5
    else:
        f = seen[e][on]
    D = jaccard_distance(f.numpy(), cfg.k1, cfg.k2)
    loose = DBSCAN(eps=res.eps, min_samples=cfg.min_samples, metric="precomputed").fit_predict(D)
    tight = DBSCAN(eps=res.eps - cfg.eps_gap, min_samples=cfg.min_samples, metric="precomputed")
    np.testing.assert_array_equal(res.label_history[e], refine_labels(D, loose, tight.fit_predict(D)))


def test_sicl_memories_are_not_a_cacl_choice() -> None:
    with pytest.raises(ValueError, match="SiCL"):
        ReIDConfig(method="cacl", cluster_on="mask")
    with pytest.raises(ValueError, match="grayscale branch"):
        ReIDConfig(method="sicl", cluster_on="gray")
