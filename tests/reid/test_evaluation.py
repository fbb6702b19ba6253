import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from structlearn.reid.evaluation import evaluate_retrieval


def reference(Q, G, qp, gp, qc, gc, qo=None, go=None, max_rank=10):
    """open-reid's loop: per query, drop same-id-same-camera (and same-id-same-clothes) entries."""
    Q = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    G = G / np.linalg.norm(G, axis=1, keepdims=True)
    dist = 2 - 2 * Q @ G.T
    aps, cmc, inps = [], np.zeros(max_rank), []
    for i in range(len(Q)):
        invalid = (gp == qp[i]) & (gc == qc[i])
        if qo is not None:
            invalid |= (gp == qp[i]) & (go == qo[i])
        keep = ~invalid
        y = gp[keep] == qp[i]
        if not y.any():
            continue
        d = dist[i, keep]
        aps.append(average_precision_score(y, -d))
        ranked = y[np.argsort(d, kind="stable")]
        first = np.flatnonzero(ranked)[0]
        cmc[first:] += 1
        inps.append(y.sum() / (np.flatnonzero(ranked)[-1] + 1))
    return np.mean(aps), cmc / len(aps), np.mean(inps), len(aps)


def _data(seed: int, clothes: bool = False):
    rng = np.random.default_rng(seed)
    n_id, dim = 12, 8
    centres = rng.normal(size=(n_id, dim))
    gp = np.repeat(np.arange(n_id), 6)
    gc = np.tile(np.arange(3), 24)
    G = centres[gp] + 1.2 * rng.normal(size=(len(gp), dim))
    qp = np.arange(n_id).repeat(2)
    qc = np.tile([0, 1], n_id)
    Q = centres[qp] + 1.2 * rng.normal(size=(len(qp), dim))
    if not clothes:
        return Q, G, qp, gp, qc, gc, None, None
    go = np.tile([0, 0, 1, 1, 2, 2], n_id)
    qo = np.tile([0, 1], n_id)
    return Q, G, qp, gp, qc, gc, qo, go


@pytest.mark.parametrize("clothes", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_open_reid_loop(seed: int, clothes: bool) -> None:
    Q, G, qp, gp, qc, gc, qo, go = _data(seed, clothes)
    res = evaluate_retrieval(Q, G, qp, gp, qc, gc, q_clothes=qo, g_clothes=go, max_rank=10, block=5)
    mAP, cmc, minp, n = reference(Q, G, qp, gp, qc, gc, qo, go, max_rank=10)
    assert res.n_valid_queries == n
    assert res.mAP == pytest.approx(mAP, abs=1e-9)
    np.testing.assert_allclose(res.cmc, cmc)
    assert res.mINP == pytest.approx(minp, abs=1e-9)
    assert set(res.summary()) == {"mAP", "mINP", "R1", "R5", "R10"}


def test_perfect_ranking_and_skipped_queries() -> None:
    G = np.eye(4)
    gp, gc = np.array([0, 1, 2, 3]), np.array([1, 1, 1, 1])
    Q = np.eye(4)[[0, 1, 2]] + 0.01
    res = evaluate_retrieval(Q, G, [0, 1, 9], gp, [0, 0, 0], gc, max_rank=4)
    assert res.mAP == 1.0 and res.cmc[0] == 1.0 and res.mINP == 1.0
    assert res.n_valid_queries == 2 and res.n_skipped_queries == 1  # identity 9 is not in the gallery


def test_bad_input() -> None:
    G = np.eye(3)
    with pytest.raises(ValueError, match="no query has a valid positive"):
        evaluate_retrieval(G, G, [0, 1, 2], [0, 1, 2], [0, 0, 0], [0, 0, 0])  # same cameras only
    with pytest.raises(ValueError, match="g_pids must have shape"):
        evaluate_retrieval(G, G, [0, 1, 2], [0, 1], [0, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="integers"):
        evaluate_retrieval(G, G, [0.5, 1, 2], [0, 1, 2], [0, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="both q_clothes and g_clothes"):
        evaluate_retrieval(G, G, [0, 1, 2], [0, 1, 2], [0, 0, 0], [1, 1, 1], q_clothes=[0, 0, 0])
