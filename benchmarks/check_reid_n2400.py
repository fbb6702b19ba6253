"""Issues 14-15 check above 2,000 training images (300 identities = 2,400 images): CACL and
Cluster-Contrast at two budgets; HCL vs MGCE-HCL at the selected and a loose eps; CACL vs SiCL on
clothes-change data (``--outfits``, ``--pose-jitter``).

Prints one JSON line per (seed, arm): mAP, R1 (and cc_mAP, cc_R1 with several outfits) on the test
identities and the wall seconds of the fit + evaluation. The tables in
``results/reid/reid_n2400_check.md`` were assembled from these lines.

    python benchmarks/check_reid_n2400.py IDS ITERS SEEDS [ARMS]
    python benchmarks/check_reid_n2400.py 300 50 100,101,102
    python benchmarks/check_reid_n2400.py 300 100 100,101,102
    python benchmarks/check_reid_n2400.py 300 50 100,101,102 hcl,mgce-hcl,hcl-loose,mgce-hcl-loose
    python benchmarks/check_reid_n2400.py 300 50 100,101,102 cacl,sicl,sicl-mask --outfits 3 --pose-jitter 0
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
    "hcl": {"method": "hcl"},
    "mgce-hcl": {"method": "mgce-hcl"},
    "hcl-loose": {"method": "hcl", "eps_shift": 0.05},
    "mgce-hcl-loose": {"method": "mgce-hcl", "eps_shift": 0.05},
    "sicl": {"method": "sicl"},
    "sicl-mask": {"method": "sicl", "cluster_on": "mask"},
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
    ap.add_argument("--outfits", type=int, default=1, help="outfits per identity (> 1: clothes change)")
    ap.add_argument("--pose-jitter", type=float, default=1.0, help="make_reid_dataset's pose_jitter")
    args = ap.parse_args()
    if args.ids < 1 or args.iters < 1:
        ap.error("ids and iters must be positive")
    try:
        make_reid_dataset(4, 2, 4, outfits_per_id=args.outfits, pose_jitter=args.pose_jitter)
    except ValueError as exc:
        ap.error(str(exc))
    torch.set_num_threads(1)
    for seed in args.seeds:
        data = make_reid_dataset(
            n_train_ids=args.ids, seed=seed, outfits_per_id=args.outfits, pose_jitter=args.pose_jitter
        )
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
            row |= {k: round(r.final[k], 4) for k in ("R1", "cc_mAP", "cc_R1") if k in r.final}
            row |= {
                "outfits": args.outfits,
                "pose_jitter": args.pose_jitter,
                "s": round(time.perf_counter() - t),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
