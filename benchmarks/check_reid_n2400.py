"""Issue 14 check: CACL and Cluster-Contrast at 2,400 training images (300 identities), two budgets.

Prints one JSON line per (seed, arm): mAP, R1 on the test identities and the wall seconds of the fit +
evaluation. The table in ``results/reid/reid_n2400_check.md`` was assembled from these lines.

    python benchmarks/check_reid_n2400.py IDS ITERS SEEDS [ARMS]
    python benchmarks/check_reid_n2400.py 300 50 100,101,102
    python benchmarks/check_reid_n2400.py 300 100 100,101,102
"""

from __future__ import annotations

import argparse
import json
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


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _arm_list(text: str) -> list[str]:
    arms = text.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}"
        )
    return arms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ids", type=int, help="training identities (300 = 2,400 images)")
    ap.add_argument("iters", type=int, help="iterations per epoch")
    ap.add_argument("seeds", type=_int_list, help="comma-separated seeds, e.g. 100,101,102")
    ap.add_argument("arms", type=_arm_list, nargs="?", default=list(ARMS), help=f"subset of {','.join(ARMS)}")
    args = ap.parse_args()
    if args.ids < 1 or args.iters < 1:
        ap.error("ids and iters must be positive")
    torch.set_num_threads(1)
    for seed in args.seeds:
        data = make_reid_dataset(n_train_ids=args.ids, seed=seed)
        for arm in args.arms:
            t = time.perf_counter()
            r = train_reid(data, ReIDConfig(epochs=12, seed=seed, iters_per_epoch=args.iters, **ARMS[arm]))
            row = {
                "ids": args.ids,
                "iters": args.iters,
                "seed": seed,
                "arm": arm,
                "mAP": round(r.final["mAP"], 4),
            }
            row |= {"R1": round(r.final["R1"], 4), "s": round(time.perf_counter() - t)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
