"""benchmarks/bench_warmup.py trains through the library's engine: a tiny run equals the plain loop the
benchmark used to have (same losses, diagnostics steps and final metric), bounded arm included."""

import importlib.util
import math
import sys
from pathlib import Path

import torch

from structlearn.optim import make_scheduler
from structlearn.utils.seed import seed_everything

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_warmup.py"
_spec = importlib.util.spec_from_file_location("bench_warmup", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_warmup"] = bench
_spec.loader.exec_module(bench)

SETUP = bench.Setup(
    "gpt", steps=12, batch_size=2, n_layer=1, n_head=2, n_embd=16, block_size=8, max_bytes=60_000,
    eval_batches=2, diag_every=5, bound_every=4,
)  # fmt: skip


def _plain_loop(data: "bench.Data", arm: "bench.Arm", lr: float, seed: int) -> tuple[list[float], float]:
    """The benchmark's former training loop (seed, model, optimizer, schedule, batches, steps)."""
    seed_everything(seed)
    model = bench.build_model(SETUP, data, arm.norm)
    opt = bench.build_optimizer(bench.train_config(SETUP, arm, lr, seed), model)
    warm = round(SETUP.warmup_frac * SETUP.steps) if arm.warmup else 0
    sched = make_scheduler(opt, SETUP.steps, warm, 0.1)
    batches = data.batches(seed)
    losses = []
    for _ in range(SETUP.steps):
        x, y = next(batches)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(round(float(loss.detach()), 5))
    return losses, bench.evaluate(model, SETUP, data)["val_loss"]


def test_engine_run_equals_the_plain_loop() -> None:
    torch.set_num_threads(1)
    data = bench.Data(SETUP)
    for arm in (bench.Arm("B0", "preln", "adamw", True), bench.Arm("B2", "preln", "adamw2", False, 0.02)):
        out = bench.run_one(SETUP, data, arm, 3e-3, seed=1)
        losses, val = _plain_loop(data, arm, 3e-3, seed=1)
        assert out["losses"] == losses
        assert out["final"]["val_loss"] == val
        assert [r["step"] for r in out["records"]] == [0.0, 5.0, 10.0, 12.0]
        assert out["stopped_at"] is None and not out["crash"]["crash"]
        if arm.optimizer == "adamw2":
            assert [b["step"] for b in out["bound"]] == [4.0, 8.0, 12.0]
            assert len(out["exact_ratio_over_tau"]) == 3  # steps 0, 5, 10 (0-based)
            assert all(math.isfinite(r) for r in out["exact_ratio_over_tau"])
