import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from structlearn.cluster.graph.affinity import knn_graph
from structlearn.cluster.methods.baselines import SpectralKNN
from structlearn.cluster.methods.networks import InputScale
from structlearn.cluster.methods.neuncut import EdgeSampler, NeuNcut, membership_mlp
from structlearn.cluster.methods.neuncut_init import select_diffusion
from structlearn.cluster.metrics import clustering_accuracy
from structlearn.cluster.objectives.ncut import hard_ncut, ncut_loss
from structlearn.data.synthetic import make_union_of_subspaces


def _blobs(n_per: int, seed: int, K: int = 4, D: int = 10, spread: float = 0.15):
    """K well-separated clusters of unit-norm points (fixed centres, per-seed samples)."""
    centres = np.random.default_rng(0).standard_normal((K, D))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    X = np.repeat(centres, n_per, axis=0) + spread * rng.standard_normal((K * n_per, D)) / np.sqrt(D)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), np.repeat(np.arange(K), n_per)


SMALL = dict(hidden_dims=(64, 64), n_epochs=60, batch_size=100, n_neighbors=10, lr=5e-3)


@pytest.fixture(scope="module")
def fitted() -> tuple[NeuNcut, np.ndarray, np.ndarray]:
    X, y = _blobs(50, seed=1)
    return NeuNcut(4, random_state=0, **SMALL).fit(X), X, y


def test_recovers_clusters_and_generalises(fitted) -> None:
    est, _X, y = fitted
    assert clustering_accuracy(y, est.labels_) > 0.95
    Xn, yn = _blobs(100, seed=2)
    assert clustering_accuracy(yn, est.predict(Xn)) > 0.95
    assert est.n_iter_ == 60 * 2  # 200 points, batch 100, drop_last


def test_training_lowers_the_loss_and_hardens_memberships(fitted) -> None:
    est, X, _ = fitted
    h = est.history_
    assert h["loss"][-10:].mean() < h["loss"][:10].mean()
    assert h["orthogonality"][-1] < 0.05  # HᵀDH ≈ I: near-hard assignments
    P = est.predict_proba(X)
    assert np.allclose(P.sum(1), 1.0, atol=1e-5)
    assert np.median(P.max(1)) > 0.9
    assert np.array_equal(P.argmax(1), est.labels_)


def test_loss_on_training_batch_matches_reference(fitted) -> None:
    # The loss of the model's own memberships on the training kNN graph is that of its hard labels.
    est, X, _ = fitted
    Xt = torch.from_numpy(X)
    W = torch.from_numpy(est.affinity_matrix_.toarray()).float()
    with torch.no_grad():
        out = ncut_loss(W, torch.softmax(est.net_(Xt), 1), 80.0)
    y_hat = torch.from_numpy(est.labels_)
    hard = ncut_loss(W, torch.nn.functional.one_hot(y_hat, 4).float(), 80.0)
    assert out.total.item() == pytest.approx(hard.total.item(), abs=0.5)


def test_predict_is_chunked_and_linear(fitted, monkeypatch) -> None:
    est, X, _ = fitted
    full = est.predict(X)
    proba = est.predict_proba(X)
    monkeypatch.setattr("structlearn.cluster.methods.deep_base.INFERENCE_CHUNK", 13)
    # More rows than a chunk: validated chunk by chunk, same results.
    assert np.array_equal(est.predict(X), full)
    assert np.array_equal(est.predict(X[::-1]), full[::-1])
    assert np.allclose(est.predict_proba(X), proba, atol=1e-6)
    bad = X.astype(np.float64)
    bad[-1, 3] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        est.predict(bad)


def test_full_batch_and_faithful_flat_kernel_run() -> None:
    X, y = _blobs(30, seed=3)
    est = NeuNcut(4, random_state=0, **{**SMALL, "batch_size": 500, "n_epochs": 80}).fit(X)
    assert est.n_iter_ == 80 and clustering_accuracy(y, est.labels_) > 0.95
    faithful = {"affinity": "batch", "init": "random", "sigma": 3.0, "n_neighbors": None, "n_epochs": 5}
    flat = NeuNcut(4, random_state=0, **{**SMALL, **faithful}).fit(X)
    assert np.all(np.isfinite(flat.history_["loss"]))


def test_mlp_initialisation() -> None:
    torch.manual_seed(0)
    net = membership_mlp(5, (7, 9), 3)
    assert [m.out_features for m in net if isinstance(m, torch.nn.Linear)] == [7, 9, 3]
    assert all(torch.all(m.bias == 0) for m in net if isinstance(m, torch.nn.Linear))


def test_deterministic_and_leaves_global_rng_alone() -> None:
    X, _ = _blobs(20, seed=4)
    kw = {**SMALL, "n_epochs": 5, "batch_size": 40}
    state = torch.random.get_rng_state()
    a = NeuNcut(4, random_state=5, **kw).fit(X)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = NeuNcut(4, random_state=5, **kw).fit(X)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.allclose(a.history_["loss"], b.history_["loss"])


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("gamma", -1.0, "gamma must be >= 0"),
        ("sigma", 0.0, "sigma must be > 0"),
        ("sigma", "max", "unknown sigma"),
        ("n_neighbors", 0, "n_neighbors must be >= 1"),
        ("batch_size", 1, "batch_size must be >= 2"),
        ("lr", 0.0, "lr must be > 0"),
        ("n_epochs", 0, "n_epochs must be >= 1"),
        ("hidden_dims", (4, 0), r"hidden_dims\[1\]"),
        ("affinity", "rbf", "unknown affinity"),
        ("init", "kmeans", "unknown init"),
        ("n_init", 0, "n_init must be >= 1"),
        ("select_every", 0, "select_every must be >= 1"),
        ("max_train_samples", 1, "max_train_samples must be >= 2"),
        ("diffusion_steps", (), "at least one"),
        ("diffusion_steps", (10, 0), r"diffusion_steps\[1\] must be >= 1"),
    ],
)
def test_bad_parameters(param: str, value, match: str) -> None:
    X, _ = _blobs(5, seed=0)
    with pytest.raises(ValueError, match=match):
        NeuNcut(4, **{**SMALL, param: value}).fit(X)


def test_bad_inputs_and_unfitted() -> None:
    X, _ = _blobs(5, seed=0)
    est = NeuNcut(4, **{**SMALL, "n_epochs": 2})
    with pytest.raises(NotFittedError) as info:
        est.predict(X)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="infinite"):
        est.fit(np.where(np.eye(20, 10) > 0, np.inf, X))
    with pytest.raises(ValueError, match="fewer than the 4 required"):
        est.fit(X[:3])
    est.fit(X)
    with pytest.raises(ValueError, match="expecting 10 features"):
        est.predict(X[:, :4])
    with pytest.raises(ValueError, match="expecting 10 features"):
        est.predict_proba(X[:, :4])


def _wine() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    d = load_wine()
    X = StandardScaler().fit_transform(d.data)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), d.target


def _uos(seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_union_of_subspaces(
        n_subspaces=10, ambient_dim=32, subspace_dim=4, n_per_subspace=60, noise=0.05, random_state=seed
    )
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), y


def test_ncut_and_accuracy_level_with_spectral_clustering_on_the_same_graph() -> None:
    # Issue 10, defect 3: NeuNcut's optimisation stalled far above the Ncut of spectral clustering's own
    # labels on the same kNN graph (UoS, 10 subspaces: Ncut ≈ 2.5 vs 0.02, ACC 0.28 vs 1.0). Both are
    # scored on the symmetric 10-NN graph that SpectralKNN clusters.
    for seed in (0, 1):
        X, y = _uos(seed)
        A = knn_graph(X, 10)
        sc = SpectralKNN(10, n_neighbors=10, random_state=seed).fit(X)
        est = NeuNcut(10, hidden_dims=(64,), n_epochs=60, random_state=seed).fit(X)
        assert hard_ncut(A, est.labels_, 10) <= 1.1 * hard_ncut(A, sc.labels_, 10) + 0.01
        assert clustering_accuracy(y, est.labels_) >= clustering_accuracy(y, sc.labels_) - 0.03


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "digits", "uos"])
def test_uses_every_cluster(name: str) -> None:
    # One digits seed used to return only 9 of 10 clusters.
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.preprocessing import StandardScaler

    if name == "wine":
        X, k = _wine()[0], 3
    elif name == "breast_cancer":
        X, k = StandardScaler().fit_transform(load_breast_cancer().data), 2
    elif name == "digits":
        X, k = load_digits().data[::3] / 16.0, 10
        X = X - X.mean(axis=0)
    else:
        X, k = _uos(0)[0], 10
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    for seed in (0, 1):
        est = NeuNcut(k, hidden_dims=(64,), n_epochs=40, diffusion_steps=(25, 100), random_state=seed).fit(X)
        assert len(np.unique(est.labels_)) == k


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "iris"])
def test_raw_scale_features_keep_every_cluster(name: str) -> None:
    # Issue 10, held-out check: on the raw sklearn sets (rows of norm 8-1,300) the first Adam steps
    # emptied clusters: Wine and breast_cancer ended with one cluster on every seed (ACC 0.399 /
    # 0.627), Iris seed 0 with two. The network now sees x / (RMS row norm); the graph is unchanged.
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X, k = X.astype(np.float32), len(np.unique(y))
    for seed in (0, 1):
        est = NeuNcut(k, random_state=seed).fit(X)
        assert est.input_scale_ == pytest.approx(np.sqrt((X.astype(np.float64) ** 2).sum(1).mean()))
        assert len(np.unique(est.labels_)) == k
        assert clustering_accuracy(y, est.labels_) > 0.65


def test_input_scale_is_part_of_the_network_and_unit_rows_pass_unchanged() -> None:
    X, _ = _blobs(50, seed=1)
    unit = NeuNcut(4, random_state=0, **SMALL).fit(X)
    assert unit.input_scale_ == 1.0 and not any(isinstance(m, InputScale) for m in unit.net_)
    big = NeuNcut(4, random_state=0, **SMALL).fit(1000.0 * X)
    assert big.input_scale_ == pytest.approx(1000.0, rel=1e-5)
    assert clustering_accuracy(unit.labels_, big.labels_) == 1.0  # the same partition at any scale
    Xn, _ = _blobs(30, seed=2)
    assert clustering_accuracy(unit.predict(Xn), big.predict(1000.0 * Xn)) == 1.0


def test_training_that_empties_a_cluster_keeps_the_start() -> None:
    # A full-batch Adam step of lr 0.2 saturates the softmax: every point goes to one cluster, whose
    # rivals then get no gradient. The guard keeps the warm start (all four clusters) and says so.
    X, y = _blobs(50, seed=1)
    with pytest.warns(ConvergenceWarning, match="keeping the start"):
        est = NeuNcut(4, random_state=0, **{**SMALL, "lr": 0.2, "batch_size": len(X)}).fit(X)
    assert est.selected_step_ == 0 and len(np.unique(est.labels_)) == 4
    assert np.array_equal(est.predict(X), est.labels_)
    assert clustering_accuracy(y, est.labels_) > 0.95


def test_sparse_and_dense_affinity_give_the_same_loss() -> None:
    X, _ = _blobs(10, seed=5)
    A = knn_graph(X, 5)
    Wd = torch.from_numpy(A.toarray()).float()
    Ws = Wd.to_sparse()
    P = torch.softmax(torch.randn(40, 4, generator=torch.Generator().manual_seed(0)), 1)
    a, b = ncut_loss(Wd, P), ncut_loss(Ws, P)
    assert torch.allclose(torch.stack(a), torch.stack(b), atol=1e-5)


def test_hard_ncut_counts_empty_clusters_as_one() -> None:
    A = knn_graph(_blobs(10, seed=6)[0], 5)
    lab = np.repeat(np.arange(4), 10)
    ref = ncut_loss(
        torch.from_numpy(A.toarray()).float(), torch.nn.functional.one_hot(torch.from_numpy(lab), 4).float()
    )
    assert hard_ncut(A, lab, 4) == pytest.approx(ref.spectral.item(), abs=1e-5)
    assert hard_ncut(A, np.zeros(40, dtype=np.int64), 4) == pytest.approx(3.0)


def _dense(A) -> torch.Tensor:
    return torch.from_numpy(np.asarray(A.todense(), dtype=np.float32))


def test_edge_batches_estimate_the_full_graph_loss() -> None:
    # The batch loss on paired edge endpoints must estimate the relaxed Ncut of the whole graph for
    # fixed memberships (an induced subgraph of a node batch gives its nodes too small degrees).
    X, _ = _blobs(100, seed=7)
    A = knn_graph(X, 10)
    rng = np.random.default_rng(0)
    P = torch.softmax(torch.randn(A.shape[0], 4, generator=torch.Generator().manual_seed(0)) * 2, dim=1)
    full = ncut_loss(_dense(A), P, gamma=0.0)
    est = []
    sampler = EdgeSampler(A, 400)
    for _ in range(200):
        idx, W = sampler.sample(rng), sampler.W
        assert idx.shape == (400,) and np.all(np.asarray(W.sum(axis=1)).ravel() == 1)
        out = ncut_loss(_dense(W), P[torch.from_numpy(idx)], gamma=0.0)
        est.append([out.spectral.item(), out.orthogonality.item()])
    assert np.mean(est, axis=0) == pytest.approx([full.spectral.item(), full.orthogonality.item()], rel=0.05)


def test_sklearn_conventions() -> None:
    est = NeuNcut(3, gamma=20.0, random_state=2)
    c = clone(est)
    assert c.get_params() == est.get_params()
    c.set_params(sigma=3.0, n_neighbors=None)
    assert (c.sigma, c.n_neighbors, est.sigma) == (3.0, None, "median")


# 30 epochs: check_clustering needs every one of the 3 blobs to own a non-empty cluster, which argmax
# memberships only guarantee once training has separated them.
@parametrize_with_checks(
    [NeuNcut(3, hidden_dims=(16,), n_epochs=30, random_state=0)],
)
def test_sklearn_check_estimator(estimator, check) -> None:
    check(estimator)


def test_auto_diffusion_reaches_large_clusters() -> None:
    # Issue 10, defect 3 at N = 10,000: the former fixed ladder (25 … 200 steps) left ten clean 1,000-point
    # subspace components half-mixed (init ACC 0.71); the auto ladder keeps doubling while the Ncut falls.
    # (Diffused features needed t > 200 here; the random columns added since reach Ncut 0 at t = 100.)
    X, y = make_union_of_subspaces(10, 32, 4, 1000, 0.05, random_state=0)
    X = np.asarray(X, np.float32)
    A = knn_graph(X, 10)
    t, labels, scores, _ = select_diffusion(A, X, 10, "auto", seed=0)
    assert t >= 100 and clustering_accuracy(y, labels) > 0.99
    assert scores[t] == min(scores.values())
    _, old, _, _ = select_diffusion(A, X, 10, (25, 50), seed=0)
    assert clustering_accuracy(y, old) < 0.9


def test_auto_diffusion_patience_starts_at_the_size_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    # At N = 50,000 (ten 5,000-point subspaces) the Ncut of the diffusion labels *rises* from t = 25 to
    # 100 before it falls to 0 at t = 1,600; patience counted from t = 25 stopped at t = 100 (init ACC
    # 0.24, NeuNcut ACC 0.32). Patience now counts from t ≥ 2√N. The Ncut sequence is scripted here:
    # (features, random columns) per t; the random signal never improves, the features reach 0.
    import structlearn.cluster.methods.neuncut_init as nc

    rng = np.random.default_rng(0)
    n = 10_000  # floor 2√N = 200
    A = sp.random(n, n, density=5 / n, random_state=0, format="csr")
    A = ((A + A.T) > 0).astype(np.float64).tocsr()
    X = rng.normal(size=(n, 4))
    script = iter([0.90, 0.95, 0.92, 0.95, 0.93, 0.95, 0.50, 0.95, 0.0, 0.95, 0.0, 0.95])
    monkeypatch.setattr(nc, "hard_ncut", lambda *a, **k: next(script))
    monkeypatch.setattr(nc, "_kmeans_rows", lambda Z, k, seed: np.zeros(len(Z), dtype=np.int64))
    t, _, scores, source = select_diffusion(A, X, 3, "auto", seed=0)
    assert t == 400 and list(scores) == [25, 50, 100, 200, 400]  # a zero Ncut ends the ladder
    assert source == "features" and scores[200] == 0.50


def test_random_columns_separate_rings_whose_feature_means_coincide() -> None:
    # Two concentric rings: diffusing the coordinates drives both rings to the same mean (the origin),
    # so the former feature-only start gave ACC 0.50 (Ncut 0.02-0.03) and NeuNcut kept it. Diffused
    # random columns become constant per ring (power-iteration clustering): Ncut 0, ACC 1.
    from sklearn.datasets import make_circles

    X, y = make_circles(600, noise=0.04, factor=0.5, random_state=200)
    X = X.astype(np.float32)
    t, labels, scores, source = select_diffusion(knn_graph(X, 10), X, 2, "auto", seed=0)
    assert source == "random" and scores[t] == 0.0 and clustering_accuracy(y, labels) == 1.0
    est = NeuNcut(2, random_state=0).fit(X)
    assert est.diffusion_source_ == "random" and clustering_accuracy(y, est.labels_) == 1.0


@pytest.mark.parametrize("seed", [0, 2])
def test_training_does_not_end_above_its_start_in_ncut(seed: int) -> None:
    # Two moons: the start already cuts the kNN graph into its two components (Ncut 0, ACC 1). The
    # relaxed-Ncut training moved boundary points across (hard Ncut 0.007 / 0.041, ACC 0.94 / 0.69); the
    # start and the end now compete by hard Ncut on the training graph, label-free.
    from sklearn.datasets import make_moons

    X, y = make_moons(600, noise=0.06, random_state=200 + seed)
    est = NeuNcut(2, random_state=seed).fit(X.astype(np.float32))
    assert est.init_ncut_ == 0.0 and est.selection_scores_.shape == (2, 2)
    assert est.selected_step_ == 0 and clustering_accuracy(y, est.labels_) == 1.0


def test_spectral_init_starts_from_spectral_clustering_and_keeps_its_ncut() -> None:
    # init="spectral": warm start from the shared spectral step's labels on the training kNN graph (the
    # graph SpectralKNN clusters); training then refines that partition without raising its Ncut much.
    from sklearn.datasets import load_digits

    X = load_digits().data[:600].astype(np.float32)
    X = X - X.mean(axis=0)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    sc = SpectralKNN(10, n_neighbors=10, random_state=0).fit(X)
    est = NeuNcut(10, init="spectral", random_state=0, **{**SMALL, "batch_size": 600}).fit(X)
    ref = hard_ncut(sc.affinity_matrix_, sc.labels_, 10)
    assert est.diffusion_steps_ is None
    assert est.init_ncut_ == pytest.approx(ref, rel=1e-6)
    assert hard_ncut(est.affinity_matrix_, est.labels_, 10) <= ref + 0.05
    assert clustering_accuracy(sc.labels_, est.labels_) > 0.9


def test_select_every_keeps_the_lowest_ncut_checkpoint() -> None:
    # select_every: the hard Ncut of the training labels is scored at the start (step 0) and every k
    # steps; the lowest-Ncut state is restored, so the result never has a higher Ncut than any
    # checkpoint, the warm start included (the drift of training away from a good start is undone).
    from sklearn.datasets import load_digits

    X = load_digits().data[:600].astype(np.float32)
    X = X - X.mean(axis=0)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    params = {**SMALL, "batch_size": 600, "n_epochs": 20}
    est = NeuNcut(10, init="spectral", select_every=4, random_state=0, **params).fit(X)
    steps, scores = est.selection_scores_[:, 0], est.selection_scores_[:, 1]
    assert list(steps) == [0, 4, 8, 12, 16, 20]
    assert scores[0] == pytest.approx(est.init_ncut_, rel=1e-6)
    final = hard_ncut(est.affinity_matrix_, est.labels_, 10)
    assert final == pytest.approx(scores.min(), rel=1e-9)
    assert est.selected_step_ == int(steps[scores.argmin()])
    np.testing.assert_array_equal(est.predict(X), est.labels_)  # the restored network, not the last one
    plain = NeuNcut(10, init="spectral", random_state=0, **params).fit(X)
    # Without select_every the start and the end compete (two checkpoints).
    assert list(plain.selection_scores_[:, 0]) == [0, 20]
    assert plain.selected_step_ == int(plain.selection_scores_[plain.selection_scores_[:, 1].argmin(), 0])
    assert final <= hard_ncut(plain.affinity_matrix_, plain.labels_, 10) + 1e-12


def test_max_train_samples_trains_on_a_subset_and_labels_every_point() -> None:
    """Above max_train_samples (default 20,000, the paper's 20k-of-70k protocol) the network trains on a
    seeded subset: the graph and the training steps are the subset's, and labels_ is the argmax on all
    of X (= predict(X))."""
    X, y = _blobs(100, seed=3)  # 400 points
    est = NeuNcut(4, random_state=0, max_train_samples=200, **SMALL).fit(X)
    assert est.train_indices_.shape == (200,) and np.all(np.diff(est.train_indices_) > 0)
    assert est.affinity_matrix_.shape == (200, 200)
    assert est.n_iter_ == 60 * 2  # 200 training points, batch 100
    assert est.labels_.shape == (400,) and np.array_equal(est.labels_, est.predict(X))
    assert clustering_accuracy(y, est.labels_) > 0.95
    again = NeuNcut(4, random_state=0, max_train_samples=200, **SMALL).fit(X)
    assert np.array_equal(again.train_indices_, est.train_indices_)
    full = NeuNcut(4, random_state=0, max_train_samples=None, **SMALL).fit(X)
    assert np.array_equal(full.train_indices_, np.arange(400)) and full.affinity_matrix_.shape == (400, 400)
    assert NeuNcut().get_params()["max_train_samples"] == 20_000


def test_edge_sampler_draws_what_rng_choice_draws() -> None:
    """The precomputed CDF (built once per fit) gives the draws of rng.choice(nnz, m, p=w/Σw)."""
    from structlearn.cluster.graph.affinity import knn_graph

    A = knn_graph(np.random.default_rng(0).normal(size=(500, 4)).astype(np.float32), 6)
    C = A.tocoo()
    w = C.data.astype(np.float64)
    assert not np.all(w == w[0])  # the symmetrised graph has weights 0.5 and 1
    sampler = EdgeSampler(A, 200)
    r_old, r_new = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(4):
        e = r_old.choice(C.nnz, size=100, p=w / w.sum())
        np.testing.assert_array_equal(sampler.sample(r_new)[0::2], C.row[e])


@pytest.mark.parametrize("params", [{"sigma": 3.0}, {"n_neighbors": None}])
def test_kernel_params_without_the_batch_kernel_warn(params) -> None:
    """`sigma=3.0 n_neighbors=None` (the official kernel) silently changed nothing on the kNN graph."""
    X = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="affinity='batch' only"):
        NeuNcut(2, n_epochs=1, hidden_dims=(4,), **params).fit(X)
