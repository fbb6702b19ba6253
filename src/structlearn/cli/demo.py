"""``structlearn demo`` (``make demo``): a few-minute version of the DNT grid on data needing no install.

Grid {preln, dnt} × {adamw, sgdw} (DNT, arXiv 2507.17501: with InputNorm, PreNorm before attention,
QK-norm and MidNorm, momentum SGDW should train about as well as AdamW, while a standard Pre-LN model
needs AdamW) for two tasks: a character-level GPT on the Python standard library's sources and a ViT
on scikit-learn's 8×8 digits. One seed, fixed learning rates per cell (``LRS``), short budgets: a
smoke-sized illustration, not the benchmark (``make bench-dnt`` sweeps learning rates and seeds).

Prints a table (final validation loss / test accuracy, throughput, optimizer state, wall time) and
writes under ``--out``: ``demo_curves.png`` (all arms) and ``demo.md`` / ``demo.json`` (table, configs,
every arm's metrics history).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from structlearn.train.config import TrainConfig

NORMS = ("preln", "dnt")
OPTIMIZERS = ("adamw", "sgdw")
TASKS = ("lm", "image")

# Shared settings per task (fixed seed, fixed data): the demo's whole budget.
TASK_SETTINGS: dict[str, dict[str, Any]] = {
    "lm": dict(
        task="lm",
        corpus="stdlib",
        block_size=64,
        n_layer=2,
        n_head=4,
        n_embd=64,
        batch_size=32,
        steps=300,
        warmup_steps=30,
        eval_every=50,
        eval_batches=10,
        log_every=25,
    ),
    "image": dict(
        task="image",
        dataset="digits",
        n_layer=4,
        n_head=4,
        n_embd=64,
        batch_size=64,
        steps=300,
        warmup_steps=30,
        eval_every=50,
        log_every=25,
    ),
}
QUICK_SETTINGS: dict[str, dict[str, Any]] = {
    "lm": dict(
        block_size=16,
        n_layer=1,
        n_embd=32,
        batch_size=8,
        steps=6,
        warmup_steps=1,
        eval_every=3,
        eval_batches=2,
        log_every=3,
        max_bytes=200_000,
    ),
    "image": dict(n_layer=1, n_embd=32, batch_size=32, steps=6, warmup_steps=1, eval_every=3, log_every=3),
}
# Fixed learning rates (task, norm, optimizer) -> (lr, weight_decay): the best of 2-4 values probed per
# cell at these settings (seed 0, 300 steps; docs/training.md), not a sweep. make bench-dnt sweeps.
LRS: dict[tuple[str, str, str], tuple[float, float]] = {
    ("lm", "preln", "adamw"): (3e-3, 0.1),
    ("lm", "dnt", "adamw"): (3e-3, 0.1),
    ("lm", "preln", "sgdw"): (0.1, 5e-4),
    ("lm", "dnt", "sgdw"): (1.0, 5e-4),
    ("image", "preln", "adamw"): (1e-3, 0.1),
    ("image", "dnt", "adamw"): (1e-3, 0.1),
    ("image", "preln", "sgdw"): (0.1, 5e-4),
    ("image", "dnt", "sgdw"): (0.03, 5e-4),
}


def arm_config(task: str, norm: str, optimizer: str, *, quick: bool = False, **overrides: Any) -> TrainConfig:
    """The config of one demo arm (``overrides`` win over the task settings and the LR table)."""
    lr, wd = LRS[(task, norm, optimizer)]
    settings = {
        **TASK_SETTINGS[task],
        **(QUICK_SETTINGS[task] if quick else {}),
        "norm": norm,
        "optimizer": optimizer,
        "lr": lr,
        "weight_decay": wd,
        "final_checkpoint": False,
        "out_dir": None,  # the demo keeps every arm's history in demo.json instead
        **overrides,
    }
    return TrainConfig(**settings)


def _run_arm(config: TrainConfig) -> dict[str, Any]:
    """One arm, in this process or a worker process (picklable in and out)."""
    from structlearn.train.engine import Trainer

    return Trainer(config).fit().to_dict(history=True)


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="short DNT grid {preln, dnt} × {adamw, sgdw} on stdlib text and digits",
        description=(__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument(
        "--task", choices=(*TASKS, "both"), default="both", help="which task(s) (default: both)"
    )
    parser.add_argument("--steps", type=int, default=None, help="override the steps per arm")
    parser.add_argument("--seed", type=int, default=0, help="seed of every arm (default: 0)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="arms trained in parallel processes, one torch thread each (default: 2, or 1 on one core)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per arm (default: 1)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds (smoke test)")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bars (with --jobs 1)",
    )
    parser.set_defaults(func=run_demo)
    return parser


def run_demo(args: argparse.Namespace) -> int:
    from structlearn.diagnostics.curves import plot_panels
    from structlearn.utils.io import check_output_path, publish_together
    from structlearn.utils.report import markdown_table, write_report
    from structlearn.utils.validation import check_int

    check_int("jobs", args.jobs, minimum=1)
    tasks = TASKS if args.task == "both" else (args.task,)
    progress = args.progress and args.jobs == 1
    overrides: dict[str, Any] = {"seed": args.seed, "threads": args.threads, "progress": progress}
    if args.steps is not None:
        overrides["steps"] = args.steps
    out = check_output_path(args.out, "--out", directory=True)  # before training any arm
    # Validate every arm before training any (bad flags → one line, exit 2, nothing written).
    arms = [
        (task, norm, opt, arm_config(task, norm, opt, quick=args.quick, **overrides))
        for task in tasks
        for norm in NORMS
        for opt in OPTIMIZERS
    ]
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = [{} for _ in arms]

    def done(i: int, res: dict[str, Any]) -> None:
        task, norm, opt, _ = arms[i]
        results[i] = res
        metric = res["final_val_loss"] if task == "lm" else res["final_test_acc"]
        name = "val loss" if task == "lm" else "test acc"
        shown = f"{metric:.4f}" if isinstance(metric, float) else "n/a"
        print(
            f"[{task}] {norm} + {opt}: {res['status']}, {name} {shown} ({res['wall_s']:.0f} s)",
            file=sys.stderr,
        )

    if args.jobs == 1:
        for i, (*_, cfg) in enumerate(arms):
            done(i, _run_arm(cfg))
    else:
        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch thread pools
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
            futures = {pool.submit(_run_arm, cfg): i for i, (*_, cfg) in enumerate(arms)}
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
    total = time.perf_counter() - t0
    rows, data, histories = [], [], {task: {} for task in tasks}
    for (task, norm, opt, cfg), res in zip(arms, results, strict=True):
        histories[task][f"{norm}+{opt}"] = res["history"]
        metric = res["final_val_loss"] if task == "lm" else res["final_test_acc"]
        rows.append(
            [
                task,
                norm,
                opt,
                f"{cfg.resolved_lr:g}",
                "diverged"
                if res["status"] == "diverged"
                else (f"{metric:.4f}" if metric is not None else "n/a"),
                f"{res['throughput']:,.0f} {res['throughput_unit']}",
                f"{res['optimizer_state_bytes'] / 2**20:.3f}",
                f"{res['wall_s']:.1f}",
            ]
        )
        data.append({"task": task, "norm": norm, "optimizer": opt, "config": cfg.resolved(), **res})
    headers = [
        "task",
        "norm",
        "optimizer",
        "lr",
        "val loss (lm) / test acc (image)",
        "throughput",
        "optimizer state MiB",
        "wall s",
    ]
    table = markdown_table(headers, rows)
    panels = []
    for task in tasks:
        keys = ("train_loss", "val_loss") if task == "lm" else ("train_loss", "test_acc")
        panels += [(f"{task}: {key}", histories[task], key) for key in keys]
    with publish_together():  # curves, demo.md and demo.json: all written or none
        plot_path = plot_panels(
            panels, out / "demo_curves.png", ncols=2, title="DNT demo: {preln, dnt} × {adamw, sgdw}"
        )
        body = (
            f"{table}\n\nSingle seed ({args.seed}), fixed learning rates, {args.jobs} parallel job(s) × "
            f"{args.threads} thread(s), total wall time {total:.0f} s. A short illustration; "
            "`make bench-dnt` sweeps learning rates and reports several seeds.\n\n"
            f"![curves]({plot_path.name})\n"
        )
        data_out = {"arms": data, "total_wall_s": total}
        write_report(out, "demo", "structlearn demo: DNT grid", body, data_out)
    print(table)
    print(f"\ntotal wall time {total:.0f} s; curves: {plot_path}; report: {out / 'demo.md'}")
    return 0  # a diverged arm is a result to report, not a failure of the demo
