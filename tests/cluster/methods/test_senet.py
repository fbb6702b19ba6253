import numpy as np
import pytest
import scipy.sparse as sp
import torch

from structlearn.cluster import SENet
from structlearn.cluster.graph.connectivity import DisconnectedGraphWarning, component_labels
from structlearn.cluster.methods.senet import SUBSPACE_RECIPE
from structlearn.cluster.metrics import evaluate, subspace_preserving_error
from structlearn.data.synthetic import make_union_of_subspaces

SMALL = {"hidden_dims": (32, 32), "out_dim": 32, "n_init": 3, "top_k": 20, "lr": 3e-3}


@pytest.fixture(scope="module")
def uos_bases() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    return make_union_of_subspaces(3, 20, 3, 60, 0.01, return_bases=True, random_state=0)


@pytest.fixture(scope="module")
def uos(uos_bases) -> tuple[np.ndarray, np.ndarray]:
    return uos_bases[0], uos_bases[1]


@pytest.fixture(scope="module")
def fitted(uos) -> SENet:
    X, _ = uos
    return SENet(3, n_iter=200, max_train_samples=120, random_state=0, **SMALL).fit(X)


@pytest.mark.parametrize("scale", [60.0, 1000.0])
def test_raw_scale_data_cluster_as_unit_rows_do(uos, fitted: SENet, scale: float) -> None:
    # Issue 10, held-out check: raw digits (row norms ≈ 60) trained to chance (ACC 0.13-0.17); these
    # subspaces × 60 scored 0.45 before SENet divided its data by their RMS row norm.
    X, y = uos
    assert fitted.input_scale_ == 1.0
    est = SENet(3, n_iter=200, max_train_samples=120, random_state=0, **SMALL).fit(scale * X)
    assert est.input_scale_ == pytest.approx(scale, rel=1e-3)
    assert evaluate(y, est.labels_)["acc"] > 0.95
    assert evaluate(y, est.predict(scale * X))["acc"] > 0.95


def test_recovers_easy_subspaces_and_outputs_are_sparse(fitted: SENet, uos) -> None:
    y = uos[1]
    assert evaluate(y, fitted.labels_)["acc"] > 0.95
    C = fitted.representation_matrix_
    assert sp.issparse(C) and C.shape == (180, 180)
    assert np.diff(C.indptr).max() <= 20 and C.diagonal().sum() == 0
    assert sp.issparse(fitted.affinity_matrix_)
    # Trained on 120 points, clustered all 180.
    assert fitted.train_indices_.shape == (120,) and fitted.labels_.shape == (180,)
    assert len(fitted.loss_curve_) > 0 and fitted.loss_curve_[-1] < fitted.loss_curve_[0]


def test_predict_unseen_points(fitted: SENet, uos_bases) -> None:
    _, y, bases = uos_bases
    # Fresh points of the same subspaces, never seen in fit.
    rng = np.random.default_rng(99)
    A = rng.standard_normal((3, 20, 3))
    A /= np.linalg.norm(A, axis=2, keepdims=True)
    X_new = np.concatenate([A[k] @ U.T for k, U in enumerate(bases)]).astype(np.float32)
    y_new = np.repeat(np.arange(3), 20)
    pred = fitted.predict(X_new)
    labels = fitted.labels_
    mapping = {c: np.bincount(y[labels == c]).argmax() for c in np.unique(labels)}
    assert np.mean([mapping[p] == t for p, t in zip(pred, y_new, strict=True)]) > 0.9
    C = fitted.coefficients(X_new)
    assert C.shape == (60, 180) and np.diff(C.indptr).max() <= 20


def test_deterministic_and_block_size_invariant(uos) -> None:
    X, _ = uos
    kw = {**SMALL, "n_iter": 20, "random_state": 1}
    a = SENet(3, block_size=1000, **kw).fit(X)
    b = SENet(3, block_size=7, **kw).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert abs(a.representation_matrix_ - b.representation_matrix_).max() < 1e-5


def test_default_trains_every_key_each_step() -> None:
    # Issue 10: the former default re-embedded only 2,000 random keys per step (a no-grad cache for the
    # rest), which optimised far worse than the paper's algorithm; the default now re-embeds all N.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2100, 8)).astype(np.float32)
    kw = {"hidden_dims": (8,), "out_dim": 8, "n_iter": 5, "random_state": 0, "top_k": 5, "n_neighbors": 3}
    a = SENet(2, **kw).fit(X)
    b = SENet(2, n_fresh_keys=len(X), **kw).fit(X)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    assert a.threshold_ == b.threshold_


def test_key_cache_path_trains(uos) -> None:
    # Fewer fresh keys than training points: cached keys + a fresh random subset per step.
    X, y = uos
    est = SENet(3, n_iter=300, n_fresh_keys=60, key_refresh=5, random_state=0, **SMALL).fit(X)
    assert est.loss_curve_[-1] < 0.5 * est.loss_curve_[0]
    assert evaluate(y, est.labels_)["acc"] > 0.85


def test_torch_global_rng_untouched(uos) -> None:
    X, _ = uos
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    SENet(3, n_iter=2, random_state=0, **SMALL).fit(X)
    np.testing.assert_array_equal(torch.rand(3), before)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"hidden_dims": 32}, "hidden_dims"),
        ({"lmbda": 1.5}, "lmbda"),
        ({"gamma": 0}, "gamma"),
        ({"affinity": "rbf"}, "affinity"),
        ({"device": "nope"}, "device"),
        ({"top_k": 0}, "top_k"),
        ({"alpha_scale": 0.0}, "alpha_scale"),
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"label_on": "test"}, "label_on"),
    ],
)
def test_bad_parameters(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SENet(2, **params).fit(np.random.default_rng(0).standard_normal((10, 3)))


def test_bad_eigen_solver_is_rejected_by_the_spectral_step(uos) -> None:
    # Passed through unvalidated (spectral.py owns the list of solvers); it must still be a ValueError.
    with pytest.raises(ValueError, match="solver"):
        SENet(3, eigen_solver="nope", n_iter=1, random_state=0, **SMALL).fit(uos[0])


def test_predict_feature_mismatch(fitted: SENet) -> None:
    with pytest.raises(ValueError, match="features"):
        fitted.predict(np.zeros((2, 5)))


def test_dead_threshold_rows_fall_back_to_unthresholded_products(uos, monkeypatch) -> None:
    """A threshold b above every |qᵀk| would leave C empty and the spectral step clustering noise."""
    from sklearn.exceptions import ConvergenceWarning

    X, y = uos
    original = SENet._train

    def train_then_kill(self, Xt, gen, cfg):  # type: ignore[no-untyped-def]
        original(self, Xt, gen, cfg)
        self.net_.threshold.data.fill_(1e6)

    kw = {"n_iter": 200, "max_train_samples": 120, "label_on": "all", "random_state": 0, **SMALL}
    ref = SENet(3, **kw).fit(X)
    assert ref.n_empty_rows_ == 0
    monkeypatch.setattr(SENet, "_train", train_then_kill)
    with pytest.warns(ConvergenceWarning, match="zeroes every coefficient of 180 of 180 rows"):
        est = SENet(3, **kw).fit(X)
    C = est.representation_matrix_
    assert est.n_empty_rows_ == 180
    assert np.all(np.diff(C.indptr) == 20) and C.diagonal().sum() == 0
    assert evaluate(y, est.labels_)["acc"] > 0.95


def test_coefficients_are_subspace_preserving_on_easy_subspaces(fitted: SENet, uos) -> None:
    # Independent 3-dim subspaces of R^20: almost all |c| mass must stay inside the true subspace.
    assert subspace_preserving_error(fitted.representation_matrix_, uos[1]) < 0.05


def test_eigen_solver_is_passed_to_the_spectral_step(uos, monkeypatch) -> None:
    import structlearn.cluster.methods.senet as senet_module

    seen: list[str] = []
    real = senet_module.spectral_clustering

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["solver"])
        return real(*args, **kwargs)

    monkeypatch.setattr(senet_module, "spectral_clustering", spy)
    X, _ = uos
    kw = {**SMALL, "n_iter": 20, "random_state": 0}
    a = SENet(3, eigen_solver="dense", **kw).fit(X)
    b = SENet(3, eigen_solver="lobpcg", **kw).fit(X)
    assert seen == ["dense", "lobpcg"]
    assert evaluate(a.labels_, b.labels_)["acc"] == 1.0  # same graph, same partition


def test_subspace_recipe_closes_part_of_the_hard_uos_gap() -> None:
    """Issue 10, defect 4: on the hard union of subspaces (D = 9, five 6-dim subspaces, noise-free)
    the paper's settings stop far above the elastic-net optimum with non-subspace-preserving C and
    cluster through a 3-NN graph that fails even on EnSC's exact C. The recipe must reach a lower
    objective (label-free), a more subspace-preserving C and a higher accuracy at the same budget.
    Measured (seed 0, 3,000 steps, width 64): objective 1.37 vs 1.62, error 0.56 vs 0.63, ACC 0.55 vs
    0.41; seeds 1, 2 agree (ACC 0.51 / 0.52 vs 0.29 / 0.38).
    """
    X, y = make_union_of_subspaces(5, 9, 6, 50, 0.0, random_state=0)
    small = {"hidden_dims": (64, 64), "out_dim": 64, "top_k": 50, "n_init": 5, "random_state": 0}
    recipe = SENet(5, **small, **{**SUBSPACE_RECIPE, "n_iter": 3000}, n_components=5).fit(X)
    paper = SENet(5, **small, gamma=50.0, n_iter=3000).fit(X)
    assert recipe.self_expression_loss().mean() < 0.9 * paper.self_expression_loss().mean()
    spe_recipe = subspace_preserving_error(recipe.representation_matrix_, y)
    assert spe_recipe < subspace_preserving_error(paper.representation_matrix_, y) - 0.04
    assert evaluate(y, recipe.labels_)["acc"] >= 0.5


def test_fragmented_affinity_is_repaired_before_the_spectral_step() -> None:
    # 30 tight clumps in two planes of R^8: each point's 3 coefficient-row neighbours stay in its clump,
    # so the 3-NN graph has many components, more than the 3 eigenvectors; the spectral step would then
    # only pick components. Repaired from |x_i^T x_j|, the graph is connected and the two planes found.
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(8, 4)))[0].T.reshape(2, 2, 8)
    centres = np.concatenate([rng.normal(size=(15, 2)) @ b for b in basis])
    X = np.repeat(centres, 6, axis=0) + 0.002 * rng.normal(size=(180, 8))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.repeat([0, 1], 90)
    # The paper's 3-NN graph (the automatic 20 neighbours would already join the clumps).
    est = SENet(2, hidden_dims=(32,), out_dim=16, n_iter=50, n_neighbors=3, random_state=0)
    with pytest.warns(DisconnectedGraphWarning, match="linked them"):
        est.fit(X)
    assert est.n_components_ > 3 and est.n_edges_added_ > 0
    assert component_labels(est.affinity_matrix_)[0] == 1
    assert evaluate(y, est.labels_)["acc"] > 0.95


def test_repair_links_fragments_not_whole_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 10, SENet ↓N on ten subspaces at N = 50k: the 3-NN graph over C's rows was 10 pure clusters
    # plus 13 specks; linking every node to its most similar node outside its component added 50,000
    # edges, 54 % across clusters (ACC 0.86). Stand-in graph: each cluster a complete graph minus a
    # 2-node speck; only the speck nodes may link (8 edges), and the clusters must stay apart.
    import structlearn.cluster.methods.senet as senet_mod

    X, y = make_union_of_subspaces(4, 20, 3, 50, 0.01, random_state=0)
    comp = y * 2 + (np.arange(len(y)) % 50 >= 48)  # per cluster: 48 nodes + a 2-node speck
    same = comp[:, None] == comp[None, :]
    graph = sp.csr_matrix(same & ~np.eye(len(y), dtype=bool), dtype=np.float64)
    monkeypatch.setattr(senet_mod, "affinity_from_coefficients", lambda C, kind, k: graph)
    est = SENet(4, **{**SMALL, "n_iter": 20}, random_state=0)
    with pytest.warns(DisconnectedGraphWarning, match="repair=.fragments."):
        est.fit(X)
    assert est.n_components_ == 8 and est.n_edges_added_ == 8
    A = est.affinity_matrix_.tocoo()
    assert np.all(y[A.row] == y[A.col])
    assert evaluate(y, est.labels_)["acc"] > 0.95
    # repair="all" (the former rule): every node links once, across clusters for whole-cluster nodes.
    every = SENet(4, **{**SMALL, "n_iter": 20}, repair="all", random_state=0)
    with pytest.warns(DisconnectedGraphWarning, match="repair='all'"):
        every.fit(X)
    assert every.n_edges_added_ == len(y)
    A = every.affinity_matrix_.tocoo()
    assert np.any(y[A.row] != y[A.col])
    with pytest.raises(ValueError, match="unknown repair"):
        SENet(4, repair="none").fit(X)


def test_specks_are_linked_even_when_fewer_than_eigenvectors(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 10, Fashion-MNIST 70k: the 3-NN graph over C's rows was one giant component holding every
    # class plus 10 specks of 4-19 nodes, fewer components than the 15 eigenvectors, so no repair ran;
    # each speck took an eigenvector of eigenvalue 1, leaving 4 for the ten classes (ACC 0.42; specks
    # linked, same C: 0.58). Stand-in: four 45-node clusters joined into one component by a ring of
    # single edges, plus three 5-node specks, with k = 4 eigenvectors: no more components than
    # eigenvectors, yet the eigenvectors are the 4 component indicators (before the fix: ACC 0.325,
    # the giant component one cluster, each speck another).
    import structlearn.cluster.methods.senet as senet_mod

    X, y = make_union_of_subspaces(4, 20, 3, 50, 0.01, random_state=0)
    order = np.argsort(y, kind="stable")  # clusters as blocks of 50 rows
    X, y = X[order], y[order]
    speck = np.arange(len(y)) % 50 >= 45
    speck[150:] = False  # specks in clusters 0-2 only
    comp = np.where(speck, 4 + y, y)
    graph = sp.lil_matrix((comp[:, None] == comp[None, :]) & ~np.eye(len(y), dtype=bool), dtype=np.float64)
    for c in range(4):  # ring: first node of cluster c to first node of cluster c + 1
        a, b = 50 * c, 50 * ((c + 1) % 4)
        graph[a, b] = graph[b, a] = 1.0
    graph = graph.tocsr()
    monkeypatch.setattr(senet_mod, "affinity_from_coefficients", lambda C, kind, k: graph)
    est = SENet(4, **{**SMALL, "n_iter": 20}, n_components=4, random_state=0)
    with pytest.warns(DisconnectedGraphWarning, match="3 under 13 nodes"):
        est.fit(X)
    assert est.n_eigenvectors_ == 4 and est.n_components_ == 4
    assert component_labels(est.affinity_matrix_)[0] == 1
    # Only speck nodes linked (one edge each), to their own subspace.
    assert est.n_edges_added_ == 15
    added = (est.affinity_matrix_ - graph).tocoo()
    assert np.all(y[added.row] == y[added.col])
    assert evaluate(y, est.labels_)["acc"] > 0.95


def _standardised(name: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's wine / breast_cancer as in the issue-10 table: standardised, rows L2-normalised."""
    import sklearn.datasets as skd
    from sklearn.preprocessing import StandardScaler, normalize

    X, y = getattr(skd, f"load_{name}")(return_X_y=True)
    return normalize(StandardScaler().fit_transform(X)).astype(np.float32), y


@pytest.mark.parametrize("seed", [0, 1])
def test_small_sets_cluster_through_a_denser_row_graph(seed: int) -> None:
    """Issue 10: on wine (N = 178) the paper's 3-NN graph over C's rows has no spectral gap at k and
    cut small groups instead of classes (table: ACC 0.79 vs k-means 0.96). The automatic 20 neighbours
    (N ≤ 20,000) must cluster the same C well; 3 neighbours stay worse. Measured (width 64, 500 steps):
    seed 0: 0.893 vs 0.809; seed 1: 0.910 vs 0.736.
    """
    X, y = _standardised("wine")
    kw = {"hidden_dims": (64, 64), "out_dim": 64, "n_iter": 500, "random_state": seed}
    auto = SENet(3, **kw).fit(X)
    assert evaluate(y, auto.labels_)["acc"] >= 0.88
    assert auto.n_neighbors_ == 20 and auto.n_eigenvectors_ == 5
    paper = SENet(3, n_neighbors=3, **kw).fit(X)
    assert paper.n_neighbors_ == 3
    assert evaluate(y, paper.labels_)["acc"] < evaluate(y, auto.labels_)["acc"] - 0.05


def test_two_clusters_use_the_fiedler_vector_only() -> None:
    """Issue 10: for k = 2 the third eigenvector of ⌈1.5k⌉ is a mode inside the larger cluster that
    k-means splits (breast_cancer, table: ACC 0.90 vs SpectralKNN 0.95). Measured (width 64, 500 steps,
    seed 0): 0.937 with the defaults, 0.868 with 3 eigenvectors on the same 20-NN graph, 0.761 with the
    former 3-NN graph and 3 eigenvectors.
    """
    X, y = _standardised("breast_cancer")
    kw = {"hidden_dims": (64, 64), "out_dim": 64, "n_iter": 500, "random_state": 0}
    est = SENet(2, **kw).fit(X)
    assert evaluate(y, est.labels_)["acc"] >= 0.92
    assert est.n_eigenvectors_ == 2
    three = SENet(2, n_components=3, **kw).fit(X)  # same C and 20-NN graph, one more eigenvector
    assert evaluate(y, three.labels_)["acc"] < evaluate(y, est.labels_)["acc"] - 0.04


def test_automatic_neighbours_and_eigenvectors_follow_n_and_k(uos, monkeypatch) -> None:
    """n_neighbors=None: 20 up to AUTO_NEIGHBORS_MAX_N points, the paper's 3 above; an int is kept.
    n_components=None: ⌈1.5k⌉ eigenvectors, k for k = 2; an int is kept."""
    import structlearn.cluster.methods.senet as senet_mod

    seen: list[tuple[int, int]] = []
    real_aff, real_sc = senet_mod.affinity_from_coefficients, senet_mod.spectral_clustering
    monkeypatch.setattr(
        senet_mod,
        "affinity_from_coefficients",
        lambda C, kind, k: seen.append(("nn", k)) or real_aff(C, kind, k),
    )
    monkeypatch.setattr(
        senet_mod,
        "spectral_clustering",
        lambda *a, **kw: seen.append(("nc", kw["n_components"])) or real_sc(*a, **kw),
    )
    X, _ = uos
    kw = {**SMALL, "n_iter": 5, "random_state": 0}
    SENet(3, **kw).fit(X)
    SENet(2, **kw).fit(X)
    SENet(2, n_neighbors=7, n_components=4, **kw).fit(X)
    monkeypatch.setattr(senet_mod, "AUTO_NEIGHBORS_MAX_N", len(X) - 1)
    est = SENet(10, **kw).fit(X)
    assert seen == [("nn", 20), ("nc", 5), ("nn", 20), ("nc", 2), ("nn", 7), ("nc", 4), ("nn", 3), ("nc", 15)]
    assert est.get_params()["n_neighbors"] is None and est.n_neighbors_ == 3 and est.n_eigenvectors_ == 15


def test_label_on_train_clusters_the_subset_and_votes_the_rest(fitted: SENet, uos) -> None:
    X, y = uos
    est = fitted  # label_on="train" is the default
    tr = est.train_indices_
    every = SENet(3, n_iter=200, max_train_samples=120, label_on="all", random_state=0, **SMALL).fit(X)
    np.testing.assert_array_equal(tr, every.train_indices_)  # same subset and training
    assert every.affinity_matrix_.shape == (180, 180)  # the paper's protocol cuts every point's graph
    assert est.affinity_matrix_.shape == (120, 120)  # the spectral step saw the training points only
    C = est.representation_matrix_
    assert C.shape == (180, 180) and C.diagonal().sum() == 0
    outside = np.setdiff1d(np.arange(180), tr)
    assert C[:, outside].nnz == 0  # every row is coded on the training points
    assert est.timings_["vote"] >= 0
    assert evaluate(y, est.labels_)["acc"] > 0.95
    assert evaluate(y[outside], est.labels_[outside])["acc"] > 0.95  # the voted points


def test_predict_after_label_on_train_votes_over_the_training_points_as_the_fit_did(
    fitted: SENet, uos, monkeypatch
) -> None:
    X, _ = uos
    outside = np.setdiff1d(np.arange(len(X)), fitted.train_indices_)
    seen = []
    vote = fitted._vote
    monkeypatch.setattr(
        fitted, "_vote", lambda C, Q, K, labels: seen.append(K.shape[0]) or vote(C, Q, K, labels)
    )
    np.testing.assert_array_equal(fitted.predict(X[outside]), fitted.labels_[outside])
    assert seen == [len(fitted.train_indices_)]  # the fit's dictionary, not every fitted point
    assert fitted.coefficients(X[:5]).shape == (5, len(X))  # coefficients still span every fitted point


def test_label_on_train_is_the_default_path_when_every_point_trains(uos) -> None:
    X, _ = uos
    a = SENet(3, n_iter=50, random_state=0, **SMALL).fit(X)
    b = SENet(3, n_iter=50, label_on="train", random_state=0, **SMALL).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert b.affinity_matrix_.shape == (180, 180) and "vote" in b.timings_
