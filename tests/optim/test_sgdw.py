import copy

import pytest
import torch
from torch import nn

from structlearn.models import GPT, GPTConfig
from structlearn.optim import SGDW, make_optimizer, optimizer_state_bytes, param_groups


def _two_steps(opt_factory, w0, grads):
    w = nn.Parameter(w0.clone())
    opt = opt_factory([w])
    for g in grads:
        w.grad = g.clone()
        opt.step()
    return w.detach()


def test_two_steps_match_hand_computation_with_decoupled_decay():
    lr, mu, wd = 0.1, 0.9, 0.5
    w0 = torch.tensor([1.0, -2.0])
    g1, g2 = torch.tensor([0.5, 1.0]), torch.tensor([-1.0, 2.0])
    # buf1 = g1 ; w1 = w0 − lr·buf1 − lr·wd·w0
    buf1 = g1
    w1 = w0 - lr * buf1 - lr * wd * w0
    buf2 = mu * buf1 + g2
    w2 = w1 - lr * buf2 - lr * wd * w1
    assert torch.allclose(w1, torch.tensor([0.90, -2.00]))
    got = _two_steps(lambda p: SGDW(p, lr=lr, momentum=mu, weight_decay=wd), w0, [g1, g2])
    torch.testing.assert_close(got, w2)
    coupled = _two_steps(lambda p: torch.optim.SGD(p, lr=lr, momentum=mu, weight_decay=wd), w0, [g1, g2])
    assert not torch.allclose(coupled, w2, atol=1e-3)  # torch SGD's coupled L2 is another method


def test_without_decay_equals_torch_sgd_momentum_and_nesterov():
    w0 = torch.randn(5)
    grads = [torch.randn(5) for _ in range(4)]
    for nesterov in (False, True):
        ours = _two_steps(lambda p, n=nesterov: SGDW(p, lr=0.05, momentum=0.8, nesterov=n), w0, grads)
        ref = _two_steps(
            lambda p, n=nesterov: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=n), w0, grads
        )
        torch.testing.assert_close(ours, ref)


def test_zero_momentum_is_plain_sgdw_without_state():
    w = nn.Parameter(torch.ones(3))
    opt = SGDW([w], lr=0.1, momentum=0.0, weight_decay=1.0)
    w.grad = torch.ones(3)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3,), 1.0 - 0.1 - 0.1))
    assert len(opt.state) == 0


def _small_gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16, norm="dnt"))


def _loss_step(model, opt, seed):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(20, (4, 8), generator=g)
    opt.zero_grad(set_to_none=True)
    model(idx, idx.roll(-1, 1))[1].backward()
    opt.step()


def test_one_state_tensor_per_parameter_and_half_of_adamw():
    model = _small_gpt()
    sgd = SGDW(param_groups(model, 0.01), lr=0.1, weight_decay=0.01)
    _loss_step(model, sgd, 0)
    params = list(model.parameters())
    assert len(sgd.state) == len(params)
    for p in params:
        (name, buf), *rest = sgd.state[p].items()
        assert not rest and name == "momentum_buffer" and buf.shape == p.shape
    model2 = _small_gpt()
    adam = make_optimizer("adamw", param_groups(model2, 0.01), lr=1e-3, weight_decay=0.01)
    _loss_step(model2, adam, 0)
    n_bytes = sum(p.numel() * p.element_size() for p in params)
    assert optimizer_state_bytes(sgd) == n_bytes
    assert optimizer_state_bytes(adam) == 2 * n_bytes == 2 * optimizer_state_bytes(sgd)
    # AdamW's 0-d step counters are bookkeeping on top of the two moment buffers.
    assert optimizer_state_bytes(adam, include_scalars=True) == 2 * n_bytes + 4 * len(params)


def test_state_dict_round_trip_continues_identically():
    model = _small_gpt()
    opt = SGDW(param_groups(model, 0.05), lr=0.2, weight_decay=0.05, nesterov=True)
    for s in range(3):
        _loss_step(model, opt, s)
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    saved_opt = copy.deepcopy(opt.state_dict())  # state_dict() holds references to live buffers
    for s in range(3, 6):
        _loss_step(model, opt, s)
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    model2 = _small_gpt()
    model2.load_state_dict(saved_model)
    opt2 = SGDW(param_groups(model2, 0.05), lr=0.2, weight_decay=0.05, nesterov=True)
    opt2.load_state_dict(saved_opt)
    for s in range(3, 6):
        _loss_step(model2, opt2, s)
    for k, v in model2.state_dict().items():
        assert torch.equal(v, expected[k]), k


def test_parameters_without_gradient_are_left_alone():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    opt = SGDW([a, b], lr=0.1, weight_decay=0.1)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and b not in opt.state


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(lr=-1.0), "lr"),
        (dict(lr=0.1, momentum=1.0), "momentum must be < 1"),
        (dict(lr=0.1, momentum=-0.1), "momentum"),
        (dict(lr=0.1, weight_decay=-1e-4), "weight_decay"),
        (dict(lr=0.1, momentum=0.0, nesterov=True), "nesterov"),
        (dict(lr=float("nan")), "lr must be finite"),
    ],
)
def test_bad_hyper_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGDW([nn.Parameter(torch.ones(1))], **kwargs)
