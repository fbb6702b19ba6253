import copy

import pytest
import torch

from structlearn.models import GPT, GPTConfig
from structlearn.optim import make_optimizer
from structlearn.optim.factory import optimizer_state_bytes
from structlearn.optim.muon import MuonAdamW, split_muon_params
from structlearn.optim.param_groups import param_groups
from structlearn.optim.schedules import make_scheduler


def _gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16, norm="dnt"))


def _step(m: GPT, opt: torch.optim.Optimizer, seed: int) -> None:
    x = torch.randint(0, 20, (4, 8), generator=torch.Generator().manual_seed(seed))
    opt.zero_grad()
    m(x, x)[1].backward()
    opt.step()


def test_hidden_matrices_go_to_muon_the_rest_to_adamw() -> None:
    m = _gpt()
    muon, adamw = split_muon_params(param_groups(m, 0.1))
    hidden = {id(p) for g in muon for p in g["params"]}
    assert id(m.wte.weight) not in hidden and id(m.wpe.weight) not in hidden  # embeddings / tied head
    assert all(p.dim() == 2 for g in muon for p in g["params"])
    assert any(p.dim() == 1 for g in adamw for p in g["params"])  # norm gains
    n_hidden = sum(p.numel() for g in muon for p in g["params"])
    n_other = sum(p.numel() for g in adamw for p in g["params"])
    opt = make_optimizer("muon", param_groups(m, 0.0), lr=0.02, weight_decay=0.0)
    _step(m, opt, 0)
    # One momentum buffer for Muon's matrices, two AdamW buffers for the rest.
    assert optimizer_state_bytes(opt) == 4 * n_hidden + 8 * n_other
    assert n_hidden + n_other == m.num_params()


def test_scheduler_drives_both_learning_rates_and_state_round_trips() -> None:
    m = _gpt()
    opt = MuonAdamW(param_groups(m, 0.0), lr=0.05, adam_lr=2e-3)
    sched = make_scheduler(opt, total_steps=10, warmup_steps=2)
    assert [g["lr"] for g in opt.param_groups][:1] == [0.025] and opt.param_groups[-1]["lr"] == 1e-3
    for s in range(3):
        _step(m, opt, s)
        sched.step()
    m2 = _gpt()
    m2.load_state_dict(m.state_dict())
    opt2 = MuonAdamW(param_groups(m2, 0.0), lr=0.05, adam_lr=2e-3)
    sched2 = make_scheduler(opt2, total_steps=10, warmup_steps=2)  # the engine's order: build, then load
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # as from a file: no shared buffers
    sched2.load_state_dict(sched.state_dict())
    for s in range(3, 5):
        _step(m, opt, s)
        sched.step()
        _step(m2, opt2, s)
        sched2.step()
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in opt2.param_groups]
    for p, q in zip(m.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="not saved by MuonAdamW"):
        opt2.load_state_dict(torch.optim.AdamW(m.parameters()).state_dict())


def test_no_hidden_matrix_is_an_error() -> None:
    with pytest.raises(ValueError, match="no 2-D hidden weight"):
        MuonAdamW([torch.nn.Parameter(torch.zeros(3))], lr=0.02)
