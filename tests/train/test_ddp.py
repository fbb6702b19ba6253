import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from structlearn.train.config import TrainConfig
from structlearn.train.engine import Trainer
from structlearn.train.metrics_log import read_metrics
from tests.train.conftest import TINY

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
def test_two_process_gloo_run_keeps_ranks_identical(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    common = ["--corpus", str(corpus), "--block-size", "16", "--steps", "6", "--eval-every", "3"]
    common += ["--n-layer", "1", "--n-head", "2", "--n-embd", "16"]
    common += ["--eval-batches", "2", "--eval-batch-size", "8", "--log-every", "2", "--no-progress"]
    args = [*common, "--batch-size", "4", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("completed 6 steps") == 1  # rank 0 alone prints
    r0, r1 = load_file(out / "rank0.safetensors"), load_file(out / "rank1.safetensors")
    assert r0.keys() == r1.keys() and all(torch.equal(r0[k], r1[k]) for k in r0)
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 6]
    # 2 processes × 4 sequences = one process × 8 sequences (same global batches), up to rounding
    single = TrainConfig(
        **TINY,
        corpus=str(corpus),
        block_size=16,
        batch_size=8,
        steps=6,
        eval_every=3,
        eval_batches=2,
        out_dir=None,
        progress=False,
    )
    trainer = Trainer(single)
    result = trainer.fit()
    ref = trainer.model.state_dict()
    assert all(torch.allclose(ref[k], r0[k], atol=1e-5) for k in ref)
    assert records[-1]["val_loss"] == pytest.approx(result.final_val_loss, rel=1e-5)
