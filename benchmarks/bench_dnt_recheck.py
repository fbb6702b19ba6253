"""Re-train the DNT benchmark's seed runs at its committed settings with the current code.

``bench_dnt.py`` caches every run, so its tables keep the numbers of the code that produced them. When
the model arithmetic changes (here: the RMSNorm reduction and the MidNorm + residual fusion, which alter
last-bit rounding), this script re-runs the seed stage — every cell of {preln, dnt} × {AdamW, SGDW} at
the (lr, wd) recorded in ``benchmarks/results/dnt/dnt.json``, seeds 0, 1, 2 — through the same
``Runner`` (same configs, same metrics), without re-selecting rates: re-selecting against cached runs of
the old code would mix the two. It writes old vs new mean ± std per cell.

    python benchmarks/bench_dnt_recheck.py --tasks lm image --out /tmp/dnt_recheck
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dnt import OUT, SEEDS, Runner, image_plan, lm_plan
from structlearn.utils.harness import RunCache, log, markdown_table, mean_std, write_report

RESULTS = Path(__file__).resolve().parent / "results" / "dnt_recheck"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=["lm", "image"], choices=["lm", "image"])
    p.add_argument("--reference", type=Path, default=OUT / "dnt.json", help="the committed bench_dnt result")
    p.add_argument("--out", type=Path, default=RESULTS, help="runs are cached under OUT/runs")
    args = p.parse_args(argv)
    try:
        ref = json.loads(args.reference.read_text())["data"]
        missing = [t for t in args.tasks if t not in ref]
    except (OSError, ValueError, KeyError, TypeError) as e:
        p.error(f"--reference {args.reference} is not a bench_dnt result: {e}")
    if missing:
        p.error(f"--reference {args.reference} has no results for task(s) {', '.join(missing)}")
    rows, data = [], {}
    for task in args.tasks:
        plan = lm_plan(False) if task == "lm" else image_plan(False)
        runner = Runner(plan, args.out, log)
        old_runs = RunCache(args.reference.parent / "runs")
        for cell in ref[task]["cells"]:
            norm, opt, lr, wd = cell["norm"], cell["optimizer"], cell["lr"], cell["wd"]
            keys = [runner.key(norm, opt, lr, wd, s, plan.steps) for s in SEEDS]
            old = [old_runs.load(k)["metric"] for k in keys]
            new = [runner.run(norm, opt, lr, wd, s, plan.steps)["metric"] for s in SEEDS]
            data[f"{task}/{norm}/{opt}"] = {"lr": lr, "wd": wd, "old": old, "new": new}
            rows.append(
                [task, norm, opt, f"{lr:g}", f"{wd:g}", mean_std(old, ".4f"), mean_std(new, ".4f"),
                 " / ".join(f"{v:.4f}" for v in new)]
            )  # fmt: skip
    table = markdown_table(
        [
            "task",
            "norm",
            "optimizer",
            "lr",
            "wd",
            "committed (old code)",
            "current code",
            "per seed (current)",
        ],
        rows,
    )
    body = (
        "Seed stage of `bench_dnt.py` re-run at the committed settings (no re-selection), seeds "
        f"{', '.join(map(str, SEEDS))}; LM: final validation loss (↓), image: test accuracy (↑).\n\n{table}\n"
    )
    write_report(args.out, "recheck", "DNT benchmark: committed seeds vs current code", body, data)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
