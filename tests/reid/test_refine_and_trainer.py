import numpy as np
import pytest
import scipy.sparse as sp

from structlearn.reid.refine import refine_labels


def dense_refine(Dd: np.ndarray, loose: np.ndarray, tight: np.ndarray) -> np.ndarray:
    """The rule of spec §3.3 with loops over points (reference)."""
    n = len(loose)
    t = tight.copy()
    nxt = t.max() + 1
    for i in range(n):
        if t[i] < 0:
            t[i] = nxt
            nxt += 1
    keep = np.zeros(n, dtype=bool)
    for i in range(n):
        if loose[i] < 0:
            continue
        C = np.flatnonzero(loose == loose[i])
        DC = Dd[np.ix_(C, C)].sum() / len(C) ** 2
        T = C[t[C] == t[i]]
        DT = 0.0
        for a in T:
            others = C[t[C] != t[a]]
            DT += Dd[a, others].sum() / max(len(others), 1) ** 2
        keep[i] = DT <= DC
    out = np.where(keep, loose, -1)
    nxt = loose.max() + 1
    for i in range(n):
        if out[i] < 0:
            out[i] = nxt
            nxt += 1
    return out


def test_refinement_equals_the_loop_definition_with_absent_pairs_at_distance_one() -> None:
    rng = np.random.default_rng(0)
    n = 40
    Dd = rng.uniform(0.2, 1.0, (n, n))
    Dd = (Dd + Dd.T) / 2
    np.fill_diagonal(Dd, 0.0)
    Dd[Dd > 0.85] = 1.0  # these pairs are left out of the sparse matrix
    loose = rng.integers(-1, 4, n)
    tight = np.where(loose >= 0, loose * 3 + rng.integers(0, 3, n), -1)
    tight[rng.random(n) < 0.1] = -1
    r, c = np.nonzero(Dd < 1.0)
    D = sp.csr_matrix((Dd[r, c], (r, c)), shape=(n, n))
    D.setdiag(0.0)
    np.testing.assert_array_equal(refine_labels(D, loose, tight), dense_refine(Dd, loose, tight))


def test_trainer_runs_every_method_and_rejects_bad_config() -> None:
    import torch

    from structlearn.data.reid import make_reid_dataset
    from structlearn.reid.trainer import ReIDConfig, train_reid

    torch.set_num_threads(1)
    ds = make_reid_dataset(24, 6, 6, n_cameras=3, seed=0)
    for method in ("spcl", "cluster-contrast", "cacl"):
        res = train_reid(ds, ReIDConfig(method=method, epochs=2, iters_per_epoch=3, k1=8, seed=0))
        assert len(res.history) == 2 and 0.0 <= res.final["mAP"] <= 1.0
        assert {"pseudo_nmi", "n_clusters", "eps"} <= set(res.history[-1])
    with pytest.raises(ValueError, match="method"):
        ReIDConfig(method="byol")
    with pytest.raises(ValueError, match="eps"):
        ReIDConfig(eps=1.5)


def test_hcl_instance_loss_and_agreement_weights() -> None:
    import torch
    import torch.nn.functional as F

    from structlearn.reid.hcl import agreement_weights, instance_loss

    torch.manual_seed(0)
    mem = F.normalize(torch.randn(6, 3), dim=1)
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    x = torch.randn(2, 3)
    rows = torch.tensor([0, 5])  # instance 5 is a singleton: no positive, no term
    logits = F.normalize(x, dim=1) @ mem.T / 0.1
    logits[0, 0] = float("-inf")
    logp = F.log_softmax(logits, 1)
    expect = -(logp[0, 1] + logp[0, 2]) / 2
    torch.testing.assert_close(instance_loss(x, mem, rows, labels, 0.1), expect)
    multi = torch.tensor([[0, 0, 1, 2, 2, -1], [0, 0, 0, 1, 1, -1]])  # two granularities
    w = agreement_weights(multi, rows)
    torch.testing.assert_close(w[0], torch.tensor([1.0, 1.0, 0.5, 0.0, 0.0, 0.0]))
    weighted = instance_loss(x, mem, rows, labels, 0.1, w)
    torch.testing.assert_close(weighted, -(logp[0, 1] * 1.0 + logp[0, 2] * 0.5) / 1.5)
    sharp = agreement_weights(multi, rows, power=4.0)  # the half-agreed positive drops to 1/16
    torch.testing.assert_close(sharp[0], torch.tensor([1.0, 1.0, 0.0625, 0.0, 0.0, 0.0]))


def test_mgce_hcl_trains() -> None:
    import torch

    from structlearn.data.reid import make_reid_dataset
    from structlearn.reid.trainer import ReIDConfig, train_reid

    torch.set_num_threads(1)
    ds = make_reid_dataset(24, 6, 6, n_cameras=3, seed=0)
    res = train_reid(ds, ReIDConfig(method="mgce-hcl", epochs=2, iters_per_epoch=3, k1=8, eps_shift=0.1))
    assert len(res.history) == 2


def test_sicl_trains_on_clothes_change_data_and_reports_both_protocols() -> None:
    import torch

    from structlearn.data.reid import make_reid_dataset
    from structlearn.reid.sicl import neighbour_clusters
    from structlearn.reid.trainer import ReIDConfig, train_reid

    torch.set_num_threads(1)
    ds = make_reid_dataset(24, 8, 6, n_cameras=3, outfits_per_id=2, seed=0)
    assert ds.train.silhouettes is not None and set(np.unique(ds.train.silhouettes)) <= {0.0, 1.0}
    res = train_reid(ds, ReIDConfig(method="sicl", epochs=2, iters_per_epoch=3, k1=8, allknn=2))
    assert {"cc_mAP", "pseudo_nmi_outfit"} <= set(res.final)
    idx, _ = neighbour_clusters(torch.eye(3) + 0.1, 1)
    assert idx.shape == (3, 1) and not bool((idx[:, 0] == torch.arange(3)).any())
    import dataclasses

    ds1 = make_reid_dataset(24, 8, 6, n_cameras=3, seed=0)
    no_sil = dataclasses.replace(ds1, train=dataclasses.replace(ds1.train, silhouettes=None))
    with pytest.raises(ValueError, match="silhouettes"):
        train_reid(no_sil, ReIDConfig(method="sicl", epochs=1, iters_per_epoch=1))


def test_explicit_pooling_is_honoured_and_none_means_the_methods_own() -> None:
    """Regression: an explicit ``pooling="avg"`` equalled the default config, so Cluster-Contrast
    silently switched it to GeM."""
    from structlearn.data.reid import make_reid_dataset
    from structlearn.reid.backbone import ReIDNetConfig
    from structlearn.reid.trainer import ReIDConfig, train_reid

    ds = make_reid_dataset(24, 6, 6, n_cameras=3, seed=0)
    kw = dict(epochs=1, iters_per_epoch=1, k1=8, seed=0)
    cases = [("cluster-contrast", None), ("cluster-contrast", "avg"), ("spcl", None), ("spcl", "gem")]
    pooled = [
        train_reid(ds, ReIDConfig(method=m, backbone=ReIDNetConfig(pooling=p), **kw)).model.config.pooling
        for m, p in cases
    ]
    assert pooled == ["gem", "avg", "avg", "gem"]
    with pytest.raises(ValueError, match="pooling"):
        ReIDNetConfig(pooling="max")


def test_centroid_memory_for_cacl_drops_outliers_and_is_validated() -> None:
    from structlearn.data.reid import make_reid_dataset
    from structlearn.reid.trainer import ReIDConfig, train_reid

    ds = make_reid_dataset(24, 6, 6, n_cameras=3, seed=0)
    kw = dict(epochs=2, iters_per_epoch=3, k1=8, seed=0)
    res = train_reid(ds, ReIDConfig(method="cacl", memory="centroid", **kw))
    lab = res.pseudo_labels
    assert (lab < 0).any() and len(np.unique(lab[lab >= 0])) == lab.max() + 1  # dropped, contiguous
    assert res.final_gray is not None and np.isfinite(res.final["mAP"])
    inst = train_reid(ds, ReIDConfig(method="cacl", **kw)).pseudo_labels
    assert (inst >= 0).all()  # the paper's instance memory keeps outliers as singletons
    # SpCL-style on a centroid memory is Cluster-Contrast with average pooling, run for run.
    from structlearn.reid.backbone import ReIDNetConfig

    a = train_reid(ds, ReIDConfig(method="spcl", memory="centroid", **kw))
    b = train_reid(ds, ReIDConfig(method="cluster-contrast", backbone=ReIDNetConfig(pooling="avg"), **kw))
    assert a.final == b.final and np.array_equal(a.pseudo_labels, b.pseudo_labels)
    for method, memory in (("cluster-contrast", "instance"), ("hcl", "centroid"), ("sicl", "centroid")):
        with pytest.raises(ValueError, match="memory"):
            ReIDConfig(method=method, memory=memory)
    with pytest.raises(ValueError, match="memory"):
        ReIDConfig(memory="bank")
    assert ReIDConfig(method="cluster-contrast").memory_kind == "centroid"
    assert ReIDConfig().memory_kind == "instance"
