"""Step time, throughput and peak memory of preln vs dnt vs dnt-full, and optimizer state bytes.

Issue 2 requires DNT's extra norms (InputNorm, QK-norm, two MidNorms per block; arXiv 2507.17501) to cost
at most 10 % step time against ``preln`` at the benchmark size, and SGDW to hold exactly half of AdamW's
optimizer state. One training step = forward + backward + optimizer step (AdamW, fp32, no clipping), on
random data of the benchmark's shapes.

Timing protocol: for each size, the schemes' models are built once; then ``--rounds`` rounds each run
``--steps`` timed steps of every scheme in turn (interleaved, after warm-up steps), so that load from
other processes on the shared machine hits all schemes alike. Step time is the *CPU time of the
calling thread* (``time.thread_time``; with one intra-op thread, forward, backward and the optimizer all
run on it), so time spent descheduled by other jobs on the shared 2-core machine does not count; wall
time is recorded as well. The reported value is the median over rounds (min also recorded). With more
than one thread, only wall time is meaningful (``--threads 2`` switches the ratio to wall time).
Peak memory is measured in a fresh process per (size, scheme, norm type) — in one long-lived process the
allocator reuses the previous model's freed pages and later schemes would show ~0: the resident-set
peak above the level after ``import torch`` (``Measure``) while building the model and running two
AdamW training steps (weights, gradients, activations, AdamW state).

    python benchmarks/bench_dnt_step.py            # full run (~10 min at 1 thread)
    python benchmarks/bench_dnt_step.py --quick    # seconds; smoke test
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from structlearn.nn import norms
from structlearn.nn.norms import NORM_TYPES
from structlearn.optim import make_optimizer, optimizer_state_bytes, param_groups
from structlearn.train.components import build_model
from structlearn.train.config import TrainConfig
from structlearn.utils.allocator import tune_malloc
from structlearn.utils.harness import log, machine_info, markdown_table, write_report
from structlearn.utils.memory import Measure

OUT = Path(__file__).resolve().parent / "results" / "dnt_step"


@dataclass(frozen=True)
class Size:
    name: str
    kind: str  # "gpt" or "vit"
    n_layer: int
    n_embd: int
    n_head: int
    batch: int
    context: int = 0  # GPT
    image: tuple[int, int] = (28, 28)  # ViT
    patch: int = 7
    vocab: int = 128

    @property
    def items_per_step(self) -> int:
        return self.batch * self.context if self.kind == "gpt" else self.batch

    @property
    def unit(self) -> str:
        return "tokens/s" if self.kind == "gpt" else "images/s"


SIZES = {
    # The reproduction benchmark's char-GPT (bench_dnt.py) and the spec's larger char-GPT (data.md §6).
    "gpt-d128": Size("gpt-d128", "gpt", 4, 128, 4, batch=16, context=128),
    "gpt-d256": Size("gpt-d256", "gpt", 4, 256, 4, batch=32, context=256),
    # The reproduction benchmark's Fashion-MNIST ViT (16 patches + CLS).
    "vit-d64": Size("vit-d64", "vit", 4, 64, 4, batch=128),
}
QUICK = {
    "gpt-tiny": Size("gpt-tiny", "gpt", 2, 32, 2, batch=4, context=16),
    "vit-tiny": Size("vit-tiny", "vit", 1, 16, 2, batch=8, image=(8, 8), patch=2),
}


def build(size: Size, norm: str, norm_type: str) -> torch.nn.Module:
    """The library's GPT/ViT builder (``train.components.build_model``, the one ``structlearn train``
    uses) at this size, initialised from seed 0."""
    torch.manual_seed(0)
    common = {"n_layer": size.n_layer, "n_head": size.n_head, "n_embd": size.n_embd, "norm": norm}
    if size.kind == "gpt":
        cfg = TrainConfig(task="lm", block_size=size.context, norm_type=norm_type, out_dir=None, **common)
        return build_model(cfg, {"vocab_size": size.vocab})
    cfg = TrainConfig(task="image", patch_size=size.patch, norm_type=norm_type, out_dir=None, **common)
    return build_model(cfg, {"image_size": size.image, "in_channels": 1, "n_classes": 10})


def batch(size: Size) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if size.kind == "gpt":
        x = torch.randint(size.vocab, (size.batch, size.context), generator=g)
        return x, x.roll(-1, 1)
    return torch.rand(size.batch, *size.image, generator=g), torch.randint(10, (size.batch,), generator=g)


def make_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor):
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        opt.step()

    return step


def measure_size(
    size: Size, schemes: list[str], norm_type: str, steps: int, rounds: int, label: str | None = None
) -> list[dict]:
    x, y = batch(size)
    runs = {}
    for norm in schemes:
        model = build(size, norm, norm_type)
        opt = make_optimizer("adamw", param_groups(model, 0.1), lr=1e-4, weight_decay=0.1)
        step = make_step(model, opt, x, y)
        for _ in range(2):  # warm-up (allocates optimizer state)
            step()
        sgd = make_optimizer("sgdw", param_groups(model, 5e-4), lr=0.1, weight_decay=5e-4)
        make_step(model, sgd, x, y)()
        runs[norm] = {
            "step": step,
            "times": [],
            "wall": [],
            "params": sum(p.numel() for p in model.parameters()),
            "adamw_state_bytes": optimizer_state_bytes(opt),
            "sgdw_state_bytes": optimizer_state_bytes(sgd),
        }
        del sgd
    for _ in range(rounds):
        for norm in schemes:
            r = runs[norm]
            r["step"]()  # one untimed step so the previous scheme's caches are evicted alike
            w0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(steps):
                r["step"]()
            r["times"].append((time.thread_time() - c0) / steps)
            r["wall"].append((time.perf_counter() - w0) / steps)
    key = "times" if torch.get_num_threads() == 1 else "wall"
    base = statistics.median(runs[schemes[0]][key])
    rows = []
    for norm in schemes:
        r = runs[norm]
        med = statistics.median(r[key])
        rows.append(
            {
                "size": size.name,
                "norm": norm,
                "norm_type": label or norm_type,
                "threads": torch.get_num_threads(),
                "ms_per_step": 1e3 * med,
                "ms_per_step_min": 1e3 * min(r[key]),
                "clock": "thread cpu" if key == "times" else "wall",
                "ratio_vs_first": med / base,
                "throughput": size.items_per_step / med,
                "unit": size.unit,
                "params": r["params"],
                "adamw_state_bytes": r["adamw_state_bytes"],
                "sgdw_state_bytes": r["sgdw_state_bytes"],
                "ms_per_step_wall": 1e3 * statistics.median(r["wall"]),
                "cpu_times_s": r["times"],
                "wall_times_s": r["wall"],
            }
        )
        log(
            f"{size.name:9s} {norm:9s} {label or norm_type:11s} t={torch.get_num_threads()} "
            f"{1e3 * med:8.1f} ms/step  ratio {med / base:.3f}  {size.items_per_step / med:9.0f} {size.unit}"
        )
    return rows


def time_all(
    malloc: str,
    threads_list: list[int],
    sizes: list[Size],
    schemes: list[str],
    norm_types: list[str],
    torch_rms: bool,
    steps: int,
    rounds: int,
) -> list[dict]:
    """Every timing row for one allocator mode (run in a fresh process)."""
    if malloc == "tuned" and not tune_malloc():
        raise SystemExit("--malloc tuned needs Linux with glibc")
    log(f"allocator: {malloc}")
    rows: list[dict] = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        for size in sizes:
            for norm_type in norm_types:
                rows += measure_size(size, schemes, norm_type, steps, rounds)
            if torch_rms and "rms" in norm_types:
                norms.FAST_RMS_BACKWARD = False
                try:
                    rows += measure_size(size, schemes, "rms", steps, rounds, label="rms (torch)")
                finally:
                    norms.FAST_RMS_BACKWARD = True
    for r in rows:
        r["malloc"] = malloc
    return rows


def memory_probe(size: Size, norm: str, norm_type: str, malloc: str = "default") -> float:
    """Peak RSS (MiB) above entry of building the model and two AdamW steps (run in a fresh process)."""
    if malloc == "tuned":
        tune_malloc()
    torch.set_num_threads(1)
    # Initialise the runtime (oneDNN/BLAS workspaces, autograd) on a tiny model first: ~85 MB that
    # would otherwise be charged to whichever model runs first.
    tiny = QUICK["gpt-tiny"] if size.kind == "gpt" else QUICK["vit-tiny"]
    tx, ty = batch(tiny)
    t_model = build(tiny, norm, norm_type)
    make_step(t_model, make_optimizer("adamw", t_model.parameters(), lr=1e-4, weight_decay=0.0), tx, ty)()
    del t_model
    x, y = batch(size)
    with Measure() as m:
        model = build(size, norm, norm_type)
        opt = make_optimizer("adamw", param_groups(model, 0.1), lr=1e-4, weight_decay=0.1)
        step = make_step(model, opt, x, y)
        for _ in range(2):
            step()
    return m.peak_mb


def add_memory(rows: list[dict], sizes: dict[str, Size]) -> None:
    """Fill ``peak_mb`` of every row from a fresh spawned process each."""
    ctx = multiprocessing.get_context("spawn")
    for r in rows:
        if r["norm_type"] not in NORM_TYPES:  # the 'rms (torch)' rows share the rms memory figure
            continue
        malloc = r.setdefault("malloc", "default")
        with ctx.Pool(1) as pool:
            r["peak_mb"] = pool.apply(memory_probe, (sizes[r["size"]], r["norm"], r["norm_type"], malloc))
        log(f"{r['size']:9s} {r['norm']:9s} {r['norm_type']:5s} {malloc:7s} peak {r['peak_mb']:.0f} MB")
    by_key = {(r["size"], r["norm"], r["malloc"]): r.get("peak_mb") for r in rows if r["norm_type"] == "rms"}
    for r in rows:
        r.setdefault("malloc", "default")
        r.setdefault("peak_mb", by_key.get((r["size"], r["norm"], r["malloc"]), float("nan")))


def summarise(rows: list[dict]) -> list[dict]:
    """One row per (size, scheme, norm type, allocator, threads): medians over the repeated processes.

    ``ratio_text`` is the median of the per-process ``× preln`` ratios, with their range when repeated.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["size"], r["norm"], r["norm_type"], r["malloc"], r["threads"]), []).append(r)
    out = []
    for reps in groups.values():
        first = reps[0]
        ratios = [r["ratio_vs_first"] for r in reps]
        med = statistics.median(r["ms_per_step"] for r in reps)
        text = f"{statistics.median(ratios):.3f}"
        if len(reps) > 1:
            text += f" [{min(ratios):.3f}–{max(ratios):.3f}]"
        peak = next((r["peak_mb"] for r in reps if "peak_mb" in r), float("nan"))
        out.append(
            {
                **{k: first[k] for k in ("size", "norm", "norm_type", "malloc", "threads", "unit", "params")},
                "ms_per_step": med,
                "ms_per_step_min": min(r["ms_per_step_min"] for r in reps),
                "ratio_median": statistics.median(ratios),
                "ratios": ratios,
                "ratio_text": text,
                "throughput": reps[0]["throughput"] * reps[0]["ms_per_step"] / med,
                "peak_mb": peak,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--schemes", nargs="+", default=["preln", "dnt", "dnt-full"])
    p.add_argument("--norm-types", nargs="+", default=["rms", "layer"], choices=["rms", "layer"])
    p.add_argument("--threads", nargs="+", type=int, default=[1])
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument(
        "--torch-rms",
        action="store_true",
        help="also time RMSNorm through torch's composite F.rms_norm (the 'before' of the fast backward)",
    )
    p.add_argument(
        "--reuse-timings",
        type=Path,
        default=None,
        help="take the timing rows from an earlier step_time.json and only (re)measure memory",
    )
    p.add_argument(
        "--malloc",
        nargs="+",
        default=["default", "tuned"],
        choices=["default", "tuned"],
        help="glibc allocator settings to time under: as shipped, and/or structlearn's tune_malloc "
        "(what `structlearn train` uses; see structlearn.utils.allocator)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="time every allocator mode in this many fresh processes (alternating); the table gives the "
        "median and range of the per-process ratios",
    )
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    for name in ("repeats", "steps", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if min(args.threads) < 1:
        p.error(f"--threads must be at least 1, got {min(args.threads)}")
    table_sizes = QUICK if args.quick else SIZES
    sizes = list(QUICK.values()) if args.quick else [SIZES[s] for s in args.sizes]
    steps, rounds = (2, 2) if args.quick else (args.steps, args.rounds)

    rows: list[dict] = []
    reused = None
    if args.reuse_timings is not None:
        old = json.loads(args.reuse_timings.read_text())
        rows = [{k: v for k, v in r.items() if k != "peak_mb"} for r in old["data"]["rows"]]
        rounds = len(rows[0]["cpu_times_s"])
        reused = f"{old['machine']['date']}, commit {old['machine']['commit']}"
    ctx = multiprocessing.get_context("spawn")
    for rep in range(0 if reused else args.repeats):
        for malloc in args.malloc:
            # mallopt settings cannot be undone, so each allocator mode times in a fresh process; the
            # repeats alternate the modes so that drifting machine load hits both alike.
            with ctx.Pool(1) as pool:
                new = pool.apply(
                    time_all,
                    (
                        malloc,
                        args.threads,
                        sizes,
                        args.schemes,
                        args.norm_types,
                        args.torch_rms,
                        steps,
                        rounds,
                    ),
                )
            rows += [{**r, "repeat": rep} for r in new]

    add_memory([r for r in rows if r.get("repeat", 0) == 0], table_sizes)
    summary = summarise(rows)
    table = markdown_table(
        ["size", "scheme", "norm", "malloc", "threads", "ms/step (median)", "ms/step (min)", "× preln",
         "throughput", "peak MB", "params"],
        [
            [r["size"], r["norm"], r["norm_type"], r["malloc"], r["threads"], f"{r['ms_per_step']:.1f}",
             f"{r['ms_per_step_min']:.1f}", r["ratio_text"], f"{r['throughput']:.0f} {r['unit']}",
             f"{r['peak_mb']:.0f}", r["params"]]
            for r in summary
        ],
    )  # fmt: skip
    seen = {}
    for r in rows:
        seen.setdefault(r["size"], r)
    state = markdown_table(
        ["size", "params (fp32 bytes)", "SGDW state bytes", "AdamW state bytes", "SGDW / AdamW"],
        [
            [s, 4 * r["params"], r["sgdw_state_bytes"], r["adamw_state_bytes"],
             f"{r['sgdw_state_bytes'] / r['adamw_state_bytes']:.3f}"]
            for s, r in seen.items()
        ],
    )  # fmt: skip
    body = (
        (f"Timings reused from the run of {reused}; memory re-measured now.\n\n" if reused else "")
        + f"One step = forward + backward + AdamW step, fp32, on random data; {rounds} interleaved rounds of "
        f"{steps} timed steps per scheme; median (and min) per-step time: thread CPU time at 1 thread "
        "(immune to being descheduled by other jobs on the shared machine), wall time at 2 threads. Wall "
        "medians at 1 thread are in the JSON (`ms_per_step_wall`). `× preln` = median step time "
        "relative to the first scheme of the same size, norm type, allocator mode and thread count. "
        "`malloc`: `default` = glibc as shipped; `tuned` = `structlearn.utils.allocator.tune_malloc` (what "
        "`structlearn train` does unless `--no-tune-malloc`): freed blocks stay in the heap, so steps do "
        "not page-fault on fresh memory; each mode is timed in its own process. Peak MB = resident-set "
        "peak in a fresh process per row (after a tiny warm-up model initialised the runtime), while "
        "building the model and running two AdamW steps (the `rms (torch)` rows repeat the `rms` figure). "
        "The machine is shared with other jobs, so absolute times are noisy; the ratios come from "
        "interleaved rounds.\n\n"
        "Sizes: gpt-d128 = 4 layers, d=128, 4 heads, context 128, batch 16, vocab 128 (the reproduction "
        "benchmark's char-GPT); gpt-d256 = 4 layers, d=256, context 256, batch 32 (spec data.md §6); "
        "vit-d64 = 4 layers, d=64, 28×28 images, patch 7 (17 tokens), batch 128.\n\n"
        f"## Step time\n\n{table}\n\n## Optimizer state (per-parameter buffers)\n\n{state}\n"
    )
    data = {"rows": rows, "summary": summary, "steps": steps, "rounds": rounds, "timings_from": reused}
    # The header's thread count is the timing processes', not this parent's.
    info = machine_info() | {"torch_threads": max(args.threads)}
    write_report(args.out, "step_time", "DNT norm overhead and optimizer state", body, data, info)
    log(f"wrote {args.out / 'step_time.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
