import itertools
import math

import pytest
import torch

from structlearn.optim import SGDW, lr_multiplier, make_scheduler


def test_cosine_values_without_warmup():
    assert lr_multiplier(0, 100, 0, 0.1) == 1.0
    assert lr_multiplier(50, 100, 0, 0.1) == pytest.approx(0.55)
    assert lr_multiplier(25, 100, 0, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_multiplier(100, 100, 0, 0.1) == pytest.approx(0.1)
    assert lr_multiplier(150, 100, 0, 0.1) == pytest.approx(0.1)


def test_linear_warmup_then_cosine_from_the_peak():
    values = [lr_multiplier(t, 20, 4, 0.2) for t in range(21)]
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert values[4] == pytest.approx(1.0)
    assert values[12] == pytest.approx(0.6)
    assert values[20] == pytest.approx(0.2)
    assert all(a >= b for a, b in itertools.pairwise(values[4:]))


def test_scheduler_applies_the_multiplier_to_every_group_and_round_trips():
    w1, w2 = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    opt = SGDW([{"params": [w1], "lr": 1.0}, {"params": [w2], "lr": 0.5}], lr=1.0)
    sched = make_scheduler(opt, total_steps=10, warmup_steps=2, min_lr_frac=0.1)
    seen = []
    for _ in range(10):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx([0.5, 0.25]) and seen[1] == pytest.approx([1.0, 0.5])
    state = sched.state_dict()
    sched2 = make_scheduler(opt, total_steps=10, warmup_steps=2, min_lr_frac=0.1)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 10 and sched2.get_last_lr() == pytest.approx([0.1, 0.05])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 0, 0, 0.1), "total_steps"),
        ((0, 10, 10, 0.1), "warmup_steps"),
        ((0, 10, -1, 0.1), "warmup_steps"),
        ((0, 10, 0, 1.5), "min_lr_frac"),
        ((-1, 10, 0, 0.1), "step"),
    ],
)
def test_bad_schedule_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        lr_multiplier(*args)
