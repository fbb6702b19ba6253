"""ReIDConfig.cluster_on (which CACL memory is clustered) and the pseudo-labels / gray-branch metrics that
ReIDResult returns."""

import numpy as np
import pytest
import torch

import structlearn.reid.trainer as trainer
from structlearn.data.reid import make_reid_dataset
from structlearn.reid.trainer import ReIDConfig, train_reid

TINY = {"epochs": 2, "iters_per_epoch": 3, "k1": 8, "seed": 0}


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return make_reid_dataset(24, 6, 6, n_cameras=3, seed=0)


def test_default_clusters_rgb_memory_as_before(tiny) -> None:
    default = train_reid(tiny, ReIDConfig(method="cacl", **TINY))
    explicit = train_reid(tiny, ReIDConfig(method="cacl", cluster_on="rgb", **TINY))
    assert default.config.cluster_on == "rgb"
    assert default.history == explicit.history
    for a, b in zip(default.label_history, explicit.label_history, strict=True):
        np.testing.assert_array_equal(a, b)
    # The same run on main's code before cluster_on existed (deterministic on CPU, one thread).
    last = default.history[-1]
    assert (last["eps"], last["n_clusters"]) == (0.4, 9.0)
    assert last["outlier_frac"] == pytest.approx(0.5138888888888888)
    assert last["mAP"] == pytest.approx(0.37128059263959673, rel=1e-5)
    assert last["pseudo_nmi"] == pytest.approx(0.6931424629237357, rel=1e-5)
    assert last["loss"] == pytest.approx(15.34134578704834, rel=1e-4)


@pytest.mark.parametrize("on", ["rgb", "gray", "both"])
def test_clustering_input_is_the_chosen_memory(tiny, on: str, monkeypatch) -> None:
    mems, seen = [], []

    class Spy(trainer.InstanceMemory):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            mems.append(self)

    inner = trainer._cluster

    def cluster(feats, *a, **kw):
        rgb, gray = (torch.nn.functional.normalize(m.features, dim=1) for m in mems)
        seen.append((feats.clone(), rgb.clone(), gray.clone()))
        return inner(feats, *a, **kw)

    monkeypatch.setattr(trainer, "InstanceMemory", Spy)
    monkeypatch.setattr(trainer, "_cluster", cluster)
    train_reid(tiny, ReIDConfig(method="cacl", cluster_on=on, **TINY))
    assert len(seen) == 2 and len(mems) == 2
    # Epoch 2: both memories have been updated with their own branch (RGB vs grayscale views).
    feats, rgb, gray = seen[-1]
    assert not torch.allclose(rgb, gray, atol=1e-3)
    if on == "rgb":
        torch.testing.assert_close(feats, rgb)
    elif on == "gray":
        torch.testing.assert_close(feats, gray)
    else:  # unit rows whose cosines are the mean of the two branches' cosines
        torch.testing.assert_close(feats.norm(dim=1), torch.ones(len(feats)))
        torch.testing.assert_close(feats @ feats.T, (rgb @ rgb.T + gray @ gray.T) / 2)


def test_gray_clustering_changes_the_pseudo_labels(tiny) -> None:
    rgb = train_reid(tiny, ReIDConfig(method="cacl", **TINY))
    gray = train_reid(tiny, ReIDConfig(method="cacl", cluster_on="gray", **TINY))
    assert gray.config.cluster_on == "gray"
    assert not np.array_equal(rgb.pseudo_labels, gray.pseudo_labels)


def test_result_has_pseudo_labels_and_gray_branch_metrics(tiny) -> None:
    n = len(tiny.train)
    cacl = train_reid(tiny, ReIDConfig(method="cacl", **TINY))
    assert cacl.pseudo_labels.shape == (n,) and len(cacl.label_history) == TINY["epochs"]
    np.testing.assert_array_equal(cacl.pseudo_labels, cacl.label_history[-1])
    assert (cacl.pseudo_labels >= 0).all()  # CACL: outliers and refined-away members are singletons
    assert cacl.final_gray is not None and {"mAP", "R1", "R5", "mINP"} <= set(cacl.final_gray)
    assert 0.0 <= cacl.final_gray["mAP"] <= 1.0
    assert cacl.final_gray != {k: cacl.final[k] for k in cacl.final_gray}  # another network, another view
    spcl = train_reid(tiny, ReIDConfig(method="spcl", **TINY))
    assert spcl.final_gray is None and spcl.pseudo_labels.shape == (n,)
    assert (spcl.pseudo_labels >= 0).all()  # SpCL keeps outliers as singleton classes
    cc = train_reid(tiny, ReIDConfig(method="cluster-contrast", **TINY))
    assert cc.final_gray is None and (cc.pseudo_labels == -1).any()  # dropped outliers stay −1
    no_gray = train_reid(tiny, ReIDConfig(method="cacl", gray_branch=False, **TINY))
    assert no_gray.final_gray is None
    # History keys are those of before the new fields.
    assert set(cacl.history[-1]) == {
        "epoch", "loss", "eps", "n_clusters", "outlier_frac", "refined_frac", "pseudo_nmi", "pseudo_ari",
        "mAP", "mINP", "R1", "R5", "R10",
    }  # fmt: skip


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"cluster_on": "hsv"}, "cluster_on"),
        ({"cluster_on": "gray", "method": "spcl"}, "grayscale branch"),
        ({"cluster_on": "both", "method": "sicl"}, "grayscale branch"),
        ({"cluster_on": "gray", "gray_branch": False}, "grayscale branch"),
    ],
)
def test_bad_cluster_on_is_rejected(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ReIDConfig(**kw)
