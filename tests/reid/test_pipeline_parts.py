import numpy as np
import pytest
import torch
import torch.nn.functional as F

from structlearn.cluster import evaluate
from structlearn.reid.jaccard import jaccard_distance
from structlearn.reid.memory import ClusterMemory, InstanceMemory
from structlearn.reid.pseudo_labels import assign_outliers, pseudo_labels, select_eps
from structlearn.reid.sampler import pk_epoch


def _ids(n_id: int = 10, n_per: int = 12, dim: int = 32, noise: float = 0.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n_id, dim))
    X = c[:, None, :] + noise * rng.normal(size=(n_id, n_per, dim))
    return X.reshape(-1, dim).astype(np.float32), np.repeat(np.arange(n_id), n_per)


def test_pseudo_labels_recover_identities_with_fixed_and_selected_eps() -> None:
    X, y = _ids()
    labels, eps, _ = pseudo_labels(X, 0.6, k1=20, k2=6)
    assert eps == 0.6 and evaluate(y, labels)["ari"] > 0.95
    labels2, eps2, _ = pseudo_labels(X, None, k1=20, k2=6)
    assert 0.05 <= eps2 <= 0.95 and evaluate(y, labels2)["ari"] > 0.95


def test_select_eps_maximises_the_number_of_clusters() -> None:
    from sklearn.cluster import DBSCAN

    X, _ = _ids(n_id=12, noise=0.9)
    D = jaccard_distance(X, 20, 6)
    grid = (0.2, 0.4, 0.6, 0.8)
    eps = select_eps(D, 4, grid)
    counts = {e: DBSCAN(eps=e, min_samples=4, metric="precomputed").fit_predict(D).max() + 1 for e in grid}
    assert counts[eps] == max(counts.values())
    assert all(counts[e] < counts[eps] for e in grid if e > eps)


def test_outliers_become_singletons_or_stay_dropped() -> None:
    raw = np.array([0, -1, 1, -1, 0])
    assert assign_outliers(raw, "singleton").tolist() == [0, 2, 1, 3, 0]
    assert assign_outliers(raw, "drop").tolist() == raw.tolist()
    with pytest.raises(ValueError, match="outliers"):
        assign_outliers(raw, "keep")  # type: ignore[arg-type]


def test_instance_memory_logits_are_member_means_and_update_is_momentum() -> None:
    torch.manual_seed(0)
    feats = F.normalize(torch.randn(6, 4), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    mem = InstanceMemory(feats, labels, temperature=0.1, momentum=0.2)
    x = F.normalize(torch.randn(3, 4), dim=1)
    expect = torch.stack([(x @ feats[labels == c].T).mean(1) for c in range(3)], 1) / 0.1
    torch.testing.assert_close(mem.logits(x), expect)
    loss = mem(x, torch.tensor([0, 2, 5]))
    torch.testing.assert_close(loss, F.cross_entropy(expect, torch.tensor([0, 1, 2])))
    mem.update(torch.tensor([1, 1, 4]), x)  # key 1 twice: two sequential momentum steps
    v = F.normalize(0.2 * feats[1] + 0.8 * x[0], dim=0)
    v = F.normalize(0.2 * v + 0.8 * x[1], dim=0)
    torch.testing.assert_close(mem.features[1], v)
    torch.testing.assert_close(mem.features[4], F.normalize(0.2 * feats[4] + 0.8 * x[2], dim=0))


def test_focal_weight_and_cluster_memory() -> None:
    torch.manual_seed(1)
    feats = torch.randn(8, 5)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, -1, 1])
    mem = ClusterMemory.from_features(feats, labels, temperature=0.05, gamma=2.0)
    x = torch.randn(4, 5)
    t = torch.tensor([0, 1, 2, 1])
    logits = F.normalize(x, dim=1) @ mem.features.T / 0.05
    logp = F.log_softmax(logits, 1)[torch.arange(4), t]
    torch.testing.assert_close(mem(x, t), -(((1 - logp.exp()) ** 2) * logp).mean())
    with pytest.raises(ValueError, match="contiguous"):
        ClusterMemory.from_features(feats, torch.tensor([0, 0, 2, 2, 2, 2, 2, 2]))


def test_pk_epoch_prefers_other_cameras_and_keeps_identities_contiguous() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2] + [3] * 5)
    cams = np.array([0, 0, 0, 1, 1, 2, 0, 0, 0, 3, 1, 2, 1, 2, 1])
    idx = pk_epoch(labels, cams, 4, rng=np.random.default_rng(0))
    assert idx.size == 4 + 4 + 1 + 4
    blocks, i = [], 0
    while i < idx.size:
        lab = labels[idx[i]]
        n = 1 if (labels == lab).sum() == 1 else 4
        blocks.append(idx[i : i + n])
        assert np.all(labels[idx[i : i + n]] == lab)
        i += n
    b0 = next(b for b in blocks if labels[b[0]] == 0)
    # identity 0: 3 images on other cameras than the anchor's exist whatever the anchor: all 3 chosen
    assert (cams[b0[1:]] != cams[b0[0]]).sum() >= 2
    b1 = next(b for b in blocks if labels[b[0]] == 1)
    assert set(b1) <= {6, 7, 8} and len(b1) == 4  # 3 images repeated cyclically
    with pytest.raises(ValueError, match="every label is -1"):
        pk_epoch(np.array([-1, -1]), np.array([0, 1]), 2, rng=np.random.default_rng(0))
