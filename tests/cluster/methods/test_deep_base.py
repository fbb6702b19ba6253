"""The shared scaffold of the deep clustering estimators (structlearn.cluster.methods.deep_base)."""

import dataclasses
import inspect
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

import structlearn.cluster.methods.deep_base as deep_base
from structlearn.cluster import PRODSC, TR2C, NeuNcut, SENet
from structlearn.cluster.graph.affinity import topk_blockwise
from structlearn.cluster.methods.deep_base import (
    DeepClusterEstimator,
    epoch_batches,
    forward_chunks,
    row_chunks,
    run_steps,
    seeded_module,
)
from structlearn.cluster.methods.neuncut import NeuNcutConfig
from structlearn.cluster.methods.prodsc_config import PRODSCConfig
from structlearn.cluster.methods.senet import SENetConfig
from structlearn.cluster.methods.tr2c import TR2CConfig
from structlearn.cluster.registry import make_estimator
from structlearn.data.synthetic import make_union_of_subspaces

CONFIGURED = [(PRODSC, PRODSCConfig), (NeuNcut, NeuNcutConfig), (TR2C, TR2CConfig), (SENet, SENetConfig)]


def test_seeded_module_is_fixed_by_its_seed_and_leaves_the_global_stream_alone() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = seeded_module(5, lambda: torch.nn.Linear(4, 3))
    assert torch.equal(torch.get_rng_state(), before)
    b = seeded_module(5, lambda: torch.nn.Linear(4, 3))
    c = seeded_module(6, lambda: torch.nn.Linear(4, 3))
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)


@pytest.mark.parametrize("est_cls, cfg_cls", CONFIGURED)
def test_constructor_is_the_config_plus_estimator_only_parameters(est_cls, cfg_cls) -> None:
    params = inspect.signature(est_cls.__init__).parameters
    fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
    assert set(fields) <= set(params) and set(params) - set(fields) <= {"self", "random_state", "verbose"}
    assert params["n_clusters"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for name, f in fields.items():
        if name != "n_clusters":
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
            assert params[name].default == f.default, name
    # Stored unchanged (the very object), validated only in fit; clone round-trips every parameter.
    dims = [7, 5]
    est = est_cls(3, hidden_dims=dims, random_state=4)
    assert est.hidden_dims is dims and est.n_clusters == 3 and est.random_state == 4
    assert clone(est).get_params() == est.get_params()
    est_cls(3, lr=-1.0)  # no validation in __init__
    with pytest.raises(TypeError, match="unexpected keyword"):
        est_cls(3, no_such_parameter=1)
    with pytest.raises(TypeError):
        est_cls(3, (64,))  # only n_clusters is positional


def test_a_config_field_without_default_is_rejected_when_the_class_is_made() -> None:
    @dataclasses.dataclass(frozen=True)
    class Cfg:
        n_clusters: int
        width: int

    with pytest.raises(TypeError, match=r"Cfg\.width needs a default"):

        class Est(DeepClusterEstimator):
            _config_class = Cfg
            _init_defaults: ClassVar[dict[str, Any]] = {"n_clusters": 2}


def test_config_is_built_once_per_fit_and_once_more_by_make_estimator(monkeypatch) -> None:
    """Before: fit built the PRO-DSC config twice (validation, then use) and a CLI run three times."""
    built = []
    original = PRODSC._config

    def counting(self):
        built.append(1)
        return original(self)

    monkeypatch.setattr(PRODSC, "_config", counting)
    X, _ = make_union_of_subspaces(3, 10, 2, 20, 0.01, random_state=0)
    kw = dict(hidden_dims=(8,), out_dim=4, n_epochs=3, warmup_steps=1, n_init=1)
    PRODSC(3, random_state=0, **kw).fit(X)
    assert len(built) == 1
    built.clear()
    make_estimator("prodsc", 3, random_state=0, **kw).fit(X)  # what `structlearn cluster` does
    assert len(built) == 2


def test_forward_chunks_equals_one_pass(monkeypatch) -> None:
    monkeypatch.setattr(deep_base, "INFERENCE_CHUNK", 7)
    net = seeded_module(0, lambda: torch.nn.Linear(5, 3))
    X = torch.randn(30, 5, generator=torch.Generator().manual_seed(1))
    assert [len(c) for c in row_chunks(X)] == [7, 7, 7, 7, 2]
    with torch.no_grad():
        ref = net(X)
    out = forward_chunks(net, row_chunks(X))
    assert not out.requires_grad and torch.allclose(out, ref, atol=1e-6)
    a, b = forward_chunks(lambda x: (net(x), 2 * x), row_chunks(X))
    assert torch.allclose(a, ref, atol=1e-6) and torch.equal(b, 2 * X)


def test_epoch_batches_drop_last_reshuffle_and_full_batch() -> None:
    gen = torch.Generator().manual_seed(0)
    batches = list(epoch_batches(10, 4, 2, gen))
    assert [len(b) for b in batches] == [4, 4, 4, 4]  # 2 of 10 rows dropped per epoch
    first, second = torch.cat(batches[:2]), torch.cat(batches[2:])
    assert len(set(first.tolist())) == 8 and not torch.equal(first, second)
    state = gen.get_state()
    full = list(epoch_batches(10, 10, 3, gen))
    assert all(torch.equal(b, torch.arange(10)) for b in full)
    assert torch.equal(gen.get_state(), state)  # a full batch draws nothing


def test_run_steps_clips_every_step_and_records_terms() -> None:
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([w], lr=1.0)
    done = []

    def step_fn(step: int):
        loss = -(100.0 * w.sum())  # gradient norm 173 before clipping
        return loss, torch.stack([loss.detach(), torch.tensor(float(step))])

    # Parameters given as a generator: clipped at every step, not only the first.
    hist = run_steps(4, step_fn, opt, clip=((p for p in [w]), 0.5), after_step=done.append)
    assert done == [1, 2, 3, 4]
    assert torch.allclose(w.detach().norm(), torch.tensor(4 * 0.5), atol=1e-5)
    assert torch.stack(hist)[:, 1].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_topk_blockwise_keeps_float64_and_maps_nonnegative_values() -> None:
    """TR2C's sparse membership: top-k of |YYᵀ| in float64, self excluded, kernel exp((v − 1)/η)."""
    gen = torch.Generator().manual_seed(0)
    Y = torch.nn.functional.normalize(torch.randn(23, 4, generator=gen, dtype=torch.float64), dim=1)
    K = topk_blockwise(
        lambda a, b: (Y[a:b] @ Y.T).abs(), 23, 23, 5, block_size=6, dtype=None,
        value_fn=lambda v: torch.exp((v - 1.0) / 0.1),
    )  # fmt: skip
    S = (Y @ Y.T).abs().numpy()
    np.fill_diagonal(S, -1.0)
    ref = np.zeros_like(S)
    for i, row in enumerate(S):
        j = np.argsort(-row)[:5]
        ref[i, j] = np.exp((row[j] - 1.0) / 0.1)
    assert sp.isspmatrix_csr(K) and K.dtype == np.float64
    assert np.array_equal(K.toarray(), ref)


def test_run_steps_flushes_subnormals_while_training_only() -> None:
    # Subnormal memberships/gradients made NeuNcut's CPU steps 11× slower late in training.
    tiny = torch.tensor([1e-39])  # a float32 subnormal
    seen: list[float] = []
    w = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([w], lr=0.0)

    def step(_: int) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(float(tiny * 1.0))
        loss = (w * 1.0).sum()
        return loss, loss.detach()[None]

    run_steps(2, step, opt)
    if torch.set_flush_denormal(False):  # the platform supports flushing (x86 with SSE3)
        assert seen == [0.0, 0.0]
        assert float(tiny * 1.0) > 0.0  # restored after the loop


def test_run_steps_trims_the_heap_periodically(monkeypatch) -> None:
    # glibc kept the pages of SENet's freed per-step tensors: +5 MB resident per step (utils.malloc).
    import torch

    import structlearn.cluster.methods.deep_base as db

    calls = []
    monkeypatch.setattr(db, "trim_heap", lambda: calls.append(1) or True)
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([w], lr=0.1)
    db.run_steps(2 * db.TRIM_EVERY + 1, lambda s: ((w * w).sum(), w.sum().detach()[None]), opt)
    assert len(calls) == 2
