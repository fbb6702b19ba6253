import numpy as np
import pytest
import torch

from structlearn.cluster.graph.gram_affinity import label_cluster_features, resolve_affinity
from structlearn.cluster.metrics import clustering_accuracy

COUNTS = [600, 300, 150, 80, 40, 30]


def _imbalanced_features(seed: int, noise: float = 0.3) -> tuple[torch.Tensor, np.ndarray]:
    """Unit cluster features on six orthogonal 3-dim subspaces of R^32, 600 … 30 points, plus noise."""
    g = torch.Generator().manual_seed(seed)
    d, r = 32, 3
    basis = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0]
    rows, labels = [], []
    for j, c in enumerate(COUNTS):
        coef = torch.randn(c, r, generator=g, dtype=torch.float64)
        rows.append(coef @ basis[:, j * r : (j + 1) * r].T + noise / d**0.5 * torch.randn(c, d, generator=g))
        labels += [j] * c
    return torch.nn.functional.normalize(torch.cat(rows), dim=1), np.array(labels)


@pytest.mark.parametrize("seed", [0, 1])
def test_default_affinity_labels_small_clusters_of_imbalanced_subspaces(seed: int) -> None:
    """Issue 10: the dense |YY^T| lets the many small cross-subspace entries outweigh a small cluster's own
    degree (ACC 0.75-0.78 here); the default "auto" (|YY^T|∘|YY^T| at d <= 64, every N) recovers it."""
    Y, y = _imbalanced_features(seed)
    auto = label_cluster_features(Y, len(COUNTS), random_state=0)
    gram = label_cluster_features(Y, len(COUNTS), affinity="gram", random_state=0)
    assert auto.affinity == "gram_sq"
    assert clustering_accuracy(y, auto.labels) >= 0.99
    assert clustering_accuracy(y, gram.labels) < 0.85  # the paper's affinity, kept as an option


def test_auto_affinity_is_the_same_at_every_n_for_small_d() -> None:
    for n in (50, 2_000, 2_001, 70_000):
        assert resolve_affinity("auto", n, 64, None) == "gram_sq"
    assert resolve_affinity("auto", 2_000, 65, None) == "gram"
    assert resolve_affinity("auto", 2_001, 65, None) == "topk"
    assert resolve_affinity("auto", 100, 8, 10) == "topk"  # a given top_k asks for the sparse graph
    assert resolve_affinity("gram", 70_000, 8, None) == "gram"
