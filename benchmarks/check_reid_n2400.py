"""Issue 14 check: CACL and Cluster-Contrast at 2,400 training images (300 identities), two budgets.

Prints one JSON line per (seed, arm): mAP, R1 on the test identities and the wall seconds of the fit +
evaluation. The table in ``results/reid/reid_n2400_check.md`` was assembled from these lines.

    python benchmarks/check_reid_n2400.py IDS ITERS SEEDS [ARMS]
    python benchmarks/check_reid_n2400.py 300 50 100,101,102
    python benchmarks/check_reid_n2400.py 300 100 100,101,102
"""

from __future__ import annotations

import json
import sys
import time

import torch

from structlearn.data.reid import make_reid_dataset
from structlearn.reid.backbone import ReIDNetConfig
from structlearn.reid.trainer import ReIDConfig, train_reid

ARMS = {
    "spcl": {"method": "spcl"},
    "cc": {"method": "cluster-contrast"},
    "cacl": {"method": "cacl", "focal_gamma": 2.0},
    "cacl-cent-gem": {
        "method": "cacl",
        "focal_gamma": 2.0,
        "memory": "centroid",
        "refinement": False,
        "backbone": ReIDNetConfig(pooling="gem"),
    },
}


def main() -> None:
    torch.set_num_threads(1)
    ids, iters = int(sys.argv[1]), int(sys.argv[2])
    seeds = [int(s) for s in sys.argv[3].split(",")]
    arms = sys.argv[4].split(",") if len(sys.argv) > 4 else list(ARMS)
    for seed in seeds:
        data = make_reid_dataset(n_train_ids=ids, seed=seed)
        for arm in arms:
            t = time.perf_counter()
            r = train_reid(data, ReIDConfig(epochs=12, seed=seed, iters_per_epoch=iters, **ARMS[arm]))
            row = {"ids": ids, "iters": iters, "seed": seed, "arm": arm, "mAP": round(r.final["mAP"], 4)}
            row |= {"R1": round(r.final["R1"], 4), "s": round(time.perf_counter() - t)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
