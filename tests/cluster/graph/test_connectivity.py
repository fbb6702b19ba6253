import numpy as np
import pytest
import scipy.sparse as sp
import torch

from structlearn.cluster.graph.connectivity import (
    RepairReport,
    component_labels,
    connect_components,
    n_connected_components,
)


def _blocks(sizes: list[int]) -> sp.csr_matrix:
    """Block-diagonal graph: each block a complete graph (weight 1, no self loops)."""
    A = sp.block_diag([np.ones((s, s)) - np.eye(s) for s in sizes]).tocsr()
    A.eliminate_zeros()
    return A


def test_component_count_of_block_graphs() -> None:
    assert n_connected_components(_blocks([3, 4, 5])) == 3
    n, lab = component_labels(_blocks([2, 2]))
    assert n == 2 and lab[0] == lab[1] != lab[2] == lab[3]
    # One directed edge joins two blocks (the spectral step symmetrises), a dense input works too.
    A = _blocks([3, 3]).tolil()
    A[0, 5] = 0.5
    assert n_connected_components(A.tocsr()) == 1
    assert n_connected_components(np.eye(4)) == 4  # self loops only: isolated nodes
    with pytest.raises(ValueError, match="square"):
        n_connected_components(sp.csr_matrix((3, 4)))


def test_repair_links_each_group_to_its_most_similar_group() -> None:
    # Six tight groups of unit vectors: groups 2g and 2g+1 are close directions (one "cluster"),
    # different clusters are orthogonal. A graph of the within-group edges only has 6 components.
    rng = np.random.default_rng(0)
    centres = []
    for g in range(3):
        e = np.zeros(6)
        e[2 * g] = 1.0
        f = np.zeros(6)
        f[2 * g] = 0.8
        f[2 * g + 1] = 0.6
        centres += [e, f]
    F = np.concatenate([c + 0.01 * rng.standard_normal((10, 6)) for c in centres])
    F /= np.linalg.norm(F, axis=1, keepdims=True)
    A = _blocks([10] * 6)
    R, rep = connect_components(A, F, metric="abs_dot", block_size=7)
    assert rep == RepairReport(6, 1, rep.n_rounds, rep.n_edges_added) and rep.n_rounds >= 1
    assert n_connected_components(R) == 1
    assert abs(R - R.T).max() < 1e-12  # stays symmetric
    added = (R - A).tocoo()
    assert np.all(added.data > 0)
    # First-round links go from each group to its partner (same cluster), with weight |f_iᵀf_j|.
    rows, cols = added.row, added.col
    first = np.isin(rows // 10, [0, 1]) & np.isin(cols // 10, [0, 1])
    assert first.sum() > 0 and np.all((rows[first] // 10) != (cols[first] // 10))
    # ½(E + Eᵀ): weight s_ij when the link was chosen from both ends, ½ s_ij from one end.
    s = np.abs(np.einsum("nd,nd->n", F[rows], F[cols]))
    w = np.asarray(R[rows, cols]).ravel()
    assert np.all(np.isclose(w, s, atol=1e-6) | np.isclose(w, 0.5 * s, atol=1e-6))
    assert s[first].min() > 0.7  # partner groups are at cos 0.8; other clusters are orthogonal


def test_repair_is_a_no_op_on_connected_graphs_and_accepts_torch_features() -> None:
    A = _blocks([5])
    F = torch.randn(5, 3)
    R, rep = connect_components(A, F)
    assert rep == RepairReport(1, 1, 0, 0) and (R != A).nnz == 0


@pytest.mark.parametrize("metric", ["dot", "euclidean"])
def test_other_metrics_connect(metric: str) -> None:
    rng = np.random.default_rng(1)
    F = np.concatenate([rng.standard_normal((8, 4)) + 5 * i for i in range(4)])
    A = _blocks([8] * 4) * 2.0
    R, rep = connect_components(A, F, metric=metric, n_links=2)
    assert rep.n_components_after == 1 and rep.n_components_before == 4
    if metric == "euclidean":  # added edges weigh the graph's mean stored weight
        assert set(np.unique(np.round((R - A).data, 9))) <= {1.0, 2.0}


def test_min_size_links_only_fragments() -> None:
    # Three whole clusters (complete graphs of 20 on orthogonal directions) and two 2-node specks
    # near cluster 0's direction. Linking every node can only join whole clusters to each other;
    # with min_size only the specks link (to cluster 0), and the clusters stay apart.
    rng = np.random.default_rng(0)
    dirs = np.eye(4)[[0, 1, 2, 0, 0]]
    F = np.repeat(dirs, [20, 20, 20, 2, 2], axis=0) + 0.05 * rng.standard_normal((64, 4))
    truth = np.repeat([0, 1, 2, 0, 0], [20, 20, 20, 2, 2])
    A = _blocks([20, 20, 20, 2, 2])
    R, rep = connect_components(A, F, metric="abs_dot", min_size=5)
    assert rep.n_components_before == 5 and rep.n_components_after == 3 and rep.n_edges_added == 4
    added = (R - A).tocoo()
    assert np.all(truth[added.row] == truth[added.col])  # nothing across clusters
    full, rep_full = connect_components(A, F, metric="abs_dot")
    assert rep_full.n_components_after == 1 and rep_full.n_edges_added == 64
    every = (full - A).tocoo()
    assert np.mean(truth[every.row] != truth[every.col]) > 0.5
    with pytest.raises(ValueError, match="min_size"):
        connect_components(A, F, min_size=0)


def test_bad_inputs() -> None:
    A = _blocks([3, 3])
    with pytest.raises(ValueError, match="rows but the affinity has 6"):
        connect_components(A, np.ones((5, 2)))
    with pytest.raises(ValueError, match="unknown metric"):
        connect_components(A, np.ones((6, 2)), metric="cosine")
    with pytest.raises(ValueError, match="NaN"):
        connect_components(A, np.full((6, 2), np.nan))
    with pytest.raises(ValueError, match="non-negative"):
        connect_components(-A, np.ones((6, 2)))
    with pytest.raises(ValueError, match="n_links"):
        connect_components(A, np.ones((6, 2)), n_links=0)
