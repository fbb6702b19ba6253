"""DEPICT (arXiv 2411.03033) vs Segmenter's mask transformer vs a linear head on DigitMosaic-Seg (issue 13).

Task (the benchmark's defaults; pilots in ``benchmarks/results/depict/pilots.md``): DigitMosaic-Seg with
digits 0-3 only (5 classes with background), glyphs in white ink (``ink=1.0``) and glyph corners on a
16-px grid (``align=16``: up to 3 glyphs in the 4 cells of a 32×32 canvas), 2,000 train / 300 val
canvases, data seed 1234. On the original set (10 random-colour digits anywhere) a 2-block ViT trained
from scratch stays near the background-only level for thousands of steps (pilots), so the table said
nothing about decoders.

Parts (``--part``):
- ``decoders``: the four decoders on the same encoder (ViT, patch 4 → 64 tokens, d 64, 2 Pre-LN blocks,
  LayerNorm) and budget (``--steps`` AdamW steps of ``--batch-size``, lr ``--lr``, 50 warmup steps, cosine
  to 0.1×, weight decay 0), seeds 0..``--seeds``−1 (init and batch order). Measured: dataset-level val
  mIoU / pixel accuracy (mmseg conventions); decoder parameters and analytic FLOPs; training images/s;
  peak memory (see below); decoder-only inference images/s (median of 5 on 256 fixed encoder outputs);
  ‖P_kP_kᵀ − I‖_F and ‖QQᵀ − I‖_F; PCA segmentation of the tokens before vs after the decoder; val mIoU
  with N(0, σ²) noise on every decoder weight (one draw, generator seed 0, per σ).
- ``grid``: DNT vs Pre-LN encoders × SGDW vs AdamW (DEPICT-SA decoder, same task and budget, weight
  decay 0): an LR ladder per cell on seed 0, then seeds 1..``--seeds``−1 at the cell's best seed-0 LR.
  The LR is chosen on the same 300 val canvases that are reported (no separate test split): optimistic
  for every cell alike.
- LR check (in ``decoders``): every decoder once more at each ``--decoder-lrs`` value (seed 0), so a
  decoder that the shared lr handicaps is visible; then each decoder at its own best seed-0 lr, all seeds.

Every training run is a fresh subprocess (``--worker``), so the engine's peak-memory figure (resident set
above the level at ``fit()`` entry, sampled every 5 ms from /proc/self/statm by
``structlearn.utils.memory.Measure``; it includes data generation, identical for all decoders) means the
same thing for every run; a second fresh process per decoder measures one training step alone
(3 AdamW steps, batch ``--batch-size``, same sampler). Finished runs are cached as JSON under
``<out>/runs/`` keyed by their settings, so an interrupted benchmark resumes.

    python benchmarks/bench_depict.py                  # both parts (~45 min at 1 thread)
    python benchmarks/bench_depict.py --part decoders  # ~20 min
    python benchmarks/bench_depict.py --quick          # smoke test (seconds)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from structlearn.models.segmentation import DECODERS, DepictDecoder, SegmenterDecoder, SegModel
from structlearn.utils.harness import RunCache

SIGMAS = (1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
NORMS = ("preln", "dnt")
OPTIMIZERS = ("adamw", "sgdw")


# ------------------------------------------------------------------------------------------ diagnostics
def _class_gram(model: SegModel) -> dict[str, float] | None:
    cls = getattr(model.decoder, "cls_emb", None)
    if cls is None:
        return None
    q = cls.detach()[0]
    eye = torch.eye(q.shape[0])
    qn = torch.nn.functional.normalize(q, dim=-1)
    return {
        "QQT_raw": float(torch.linalg.matrix_norm(q @ q.T - eye)),
        "QQT_unit": float(torch.linalg.matrix_norm(qn @ qn.T - eye)),
    }


def _head_gram(model: SegModel) -> float | None:
    dec = model.decoder
    if not isinstance(dec, DepictDecoder):
        return None
    errs = torch.cat([layer.head_gram_error().detach() for layer in (*dec.sa, *dec.ca)])
    return float(errs.mean())


def _decoder_speed(model: SegModel, x: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        z = model.tokens(x)
        model.decoder(z)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            model.decoder(z)
            times.append(time.perf_counter() - t)
    return len(x) / statistics.median(times)


@torch.no_grad()
def refined_tokens(model: SegModel, z: torch.Tensor) -> torch.Tensor | None:
    """Patch tokens after the decoder, as they enter the cosine mask step (None for the linear head)."""
    dec = model.decoder
    if isinstance(dec, DepictDecoder):
        return dec.refine(z)[0]
    if isinstance(dec, SegmenterDecoder):
        x = torch.cat([dec.proj_dec(z), dec.cls_emb.expand(z.shape[0], -1, -1)], dim=1)
        for block in dec.blocks:
            x = block(x)
        return dec.decoder_norm(x)[:, : -dec.n_classes] @ dec.proj_patch
    return None


def pca_segmentation(
    tokens: torch.Tensor, masks: torch.Tensor, n_classes: int, patch: int, seed: int = 0
) -> dict[str, float]:
    """Unsupervised segmentation of each image from its tokens (spec §9.1): centre the image's N tokens,
    project them on their top-``n_classes`` principal directions, k-means with K = the number of classes
    present in the image's ground truth (the same oracle count before and after the decoder), upsample the
    cluster ids to pixels (each token → its p×p patch), match clusters to classes per image by the
    Hungarian algorithm on pixel overlap, then dataset-level mIoU and pixel accuracy (ignore 255)."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    B, N, _ = tokens.shape
    H, W = masks.shape[1:]
    gh, gw = H // patch, W // patch
    hist = np.zeros((3, n_classes), dtype=np.int64)  # intersection, predicted, labelled areas
    for i in range(B):
        y = masks[i].numpy()
        keep = y != 255
        present = np.unique(y[keep])
        k = len(present)
        z = tokens[i].double()
        z = z - z.mean(0)
        _, _, vh = torch.linalg.svd(z, full_matrices=False)
        proj = (z @ vh[: min(n_classes, vh.shape[0])].T).numpy()
        if k > 1:
            ids = KMeans(k, n_init=3, random_state=seed).fit_predict(proj)
        else:
            ids = np.zeros(N, dtype=np.int64)
        pix = np.kron(ids.reshape(gh, gw), np.ones((patch, patch), dtype=np.int64))
        cont = np.zeros((k, k), dtype=np.int64)  # clusters × present classes
        cls_idx = np.searchsorted(present, y[keep])
        np.add.at(cont, (pix[keep], cls_idx), 1)
        rows, cols = linear_sum_assignment(-cont)
        lut = np.zeros(k, dtype=np.int64)
        lut[rows] = present[cols]
        pred = lut[pix[keep]]
        yk = y[keep]
        hist[0] += np.bincount(yk[pred == yk], minlength=n_classes)
        hist[1] += np.bincount(pred, minlength=n_classes)
        hist[2] += np.bincount(yk, minlength=n_classes)
    union = hist[1] + hist[2] - hist[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, hist[0] / np.maximum(union, 1), np.nan)
    return {"mIoU": float(np.nanmean(iou)), "aAcc": float(hist[0].sum() / hist[2].sum())}


# -------------------------------------------------------------------------------------------- one run
def _config(spec: dict[str, Any]) -> Any:
    from structlearn.train import TrainConfig

    steps = int(spec["steps"])
    return TrainConfig(
        task="segment", decoder=spec["decoder"], seed=int(spec["seed"]), steps=steps,
        batch_size=int(spec["batch_size"]), n_layer=int(spec["n_layer"]), n_head=2, n_embd=64,
        norm=spec["norm"], norm_type="layer", optimizer=spec["optimizer"], lr=float(spec["lr"]),
        weight_decay=0.0, warmup_steps=min(50, steps // 10), min_lr_frac=0.1, train_subset=int(spec["train"]),
        eval_every=steps, log_every=max(1, steps // 10), progress=False, threads=1, out_dir=spec["out_dir"],
        checkpoint_every=0, final_checkpoint=False, extras={"digit_mosaic": spec["mosaic"]},
    )  # fmt: skip


def _eval(trainer: Any, model: SegModel) -> dict[str, float]:
    return trainer.task.evaluate(model, torch.device("cpu"), lambda: torch.autocast("cpu", enabled=False))


def worker_train(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one run (in this fresh process) and measure it; ``spec["full"]`` adds the diagnostics."""
    from structlearn.train.engine import Trainer

    trainer = Trainer(_config(spec))
    res = trainer.fit()
    model: SegModel = trainer.model  # type: ignore[assignment]
    model.eval()
    final = _eval(trainer, model)
    row: dict[str, Any] = {
        **{k: spec[k] for k in ("part", "decoder", "norm", "optimizer", "lr", "seed")},
        "status": res.status,
        "mIoU": final["test_mIoU"],
        "aAcc": final["test_acc"],
        "train_images_per_s": res.throughput,
        "run_peak_mb": res.peak_mb,
        "wall_s": res.wall_s,
        "final_train_loss": res.final_train_loss,
    }
    if not spec.get("full"):
        return row
    task = trainer.task
    x = task._normalise(task.x_test)
    noise = {}
    for sigma in SIGMAS:
        noisy = copy.deepcopy(model)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in noisy.decoder.parameters():
                p.add_(torch.randn(p.shape, generator=g) * sigma)
        noise[str(sigma)] = _eval(trainer, noisy)["test_mIoU"]
    with torch.no_grad():
        z = torch.cat([model.tokens(x[i : i + 100]) for i in range(0, len(x), 100)])
        after = refined_tokens(model, z)
    patch = model.encoder_config.patch_size
    patch = patch if isinstance(patch, int) else patch[0]
    C = task.n_classes
    row.update(
        decoder_params=model.decoder_params(),
        decoder_mflops=model.decoder_flops() / 1e6,
        decoder_images_per_s=_decoder_speed(model, x[:256]),
        head_gram=_head_gram(model),
        class_gram=_class_gram(model),
        noise_mIoU=noise,
        pca_before=pca_segmentation(z, task.y_test, C, patch),
        pca_after=None if after is None else pca_segmentation(after, task.y_test, C, patch),
    )
    return row


def worker_probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak resident memory of training steps alone (fresh process): 3 AdamW steps, fixed random batch."""
    from structlearn.optim.factory import make_optimizer
    from structlearn.train.components import build_model
    from structlearn.utils.memory import Measure

    torch.set_num_threads(1)
    torch.manual_seed(0)
    C = 1 + len(spec["mosaic"]["digits"])
    # The training runs' Pre-LN encoder and decoder, built by the library's builder (no optimizer steps
    # beyond the three measured ones; steps/seed/lr below only complete the config).
    cfg = _config({**spec, "norm": "preln", "optimizer": "adamw", "lr": 1e-3, "seed": 0, "steps": 10,
                   "out_dir": "unused"})  # fmt: skip
    model = build_model(cfg, {"image_size": 32, "in_channels": 3, "n_classes": C})
    b = int(spec["batch_size"])
    x, y = torch.randn(b, 3, 32, 32), torch.randint(0, C, (b, 32, 32))
    opt = make_optimizer("adamw", model.parameters(), lr=1e-3, weight_decay=0.0)
    with Measure() as m:
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            model(x, y)[1].backward()  # type: ignore[union-attr]
            opt.step()
    return {"part": "probe", "decoder": spec["decoder"], "step_peak_mb": m.peak_mb}


_RUNS: dict[str, dict[str, Any]] = {}  # every row of this invocation (cached or not), by cache file


def run_cached(spec: dict[str, Any], cache: Path) -> dict[str, Any]:
    """Run ``spec`` in a fresh subprocess unless the run cache holds a row made from the same spec."""
    store = RunCache(cache.parent)
    want = json.loads(json.dumps(spec))  # the spec as it reads back from JSON (tuples → lists)
    saved = store.load(cache.stem, valid=lambda r: r.get("spec") == want)
    if saved is not None:
        _RUNS[str(cache)] = saved["row"]
        return saved["row"]
    cache.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = cache.with_suffix(".tmp")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec), "--result", str(out)]
    t = time.time()
    subprocess.run(cmd, check=True, env=env)
    row = json.loads(out.read_text())
    out.unlink()
    row = store.save(cache.stem, {"spec": spec, "row": row})["row"]
    _RUNS[str(cache)] = row
    print(f"  {cache.stem}: {time.time() - t:.0f} s, mIoU {row.get('mIoU', float('nan')):.3f}", flush=True)
    return row


# ------------------------------------------------------------------------------------------- reporting
def _ms(values: list[float], scale: float = 1.0, fmt: str = ".1f") -> str:
    v = [scale * x for x in values]
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):{fmt}} ± {sd:{fmt}}"


def decoders_report(rows: list[dict[str, Any]], probes: dict[str, float]) -> list[str]:
    # The seeds of each decoder that has runs, in DECODERS order (one grouping for every table).
    groups = {d: r for d in DECODERS if (r := [x for x in rows if x["decoder"] == d])}
    lines = [
        "| decoder | val mIoU (%) | pixel acc (%) | decoder params | decoder MFLOPs/img | train img/s "
        "| decoder-only img/s | run peak MiB | step peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dec, r in groups.items():
        lines.append(
            f"| {dec} | {_ms([x['mIoU'] for x in r], 100)} | {_ms([x['aAcc'] for x in r], 100)} | "
            f"{r[0]['decoder_params']:,} | {r[0]['decoder_mflops']:.2f} | "
            f"{_ms([x['train_images_per_s'] for x in r], fmt='.0f')} | "
            f"{_ms([x['decoder_images_per_s'] for x in r], fmt='.0f')} | "
            f"{_ms([x['run_peak_mb'] for x in r], fmt='.0f')} | {probes.get(dec, float('nan')):.1f} |"
        )
    lines += [
        "",
        "PCA segmentation of the tokens (per image: top-C principal directions, k-means with K = classes "
        "present, Hungarian-matched; dataset-level), mean ± std over seeds:",
        "",
        "| decoder | before decoder: mIoU (%) | pixel acc (%) | after decoder: mIoU (%) | pixel acc (%) |",
        "|---|---|---|---|---|",
    ]
    for dec, r in groups.items():
        after = "— | —"
        if r[0]["pca_after"] is not None:
            after = " | ".join(_ms([x["pca_after"][k] for x in r], 100) for k in ("mIoU", "aAcc"))
        lines.append(
            f"| {dec} | {_ms([x['pca_before']['mIoU'] for x in r], 100)} | "
            f"{_ms([x['pca_before']['aAcc'] for x in r], 100)} | {after} |"
        )
    lines += [
        "",
        "Orthogonality (mean ± std over seeds):",
        "",
        "| decoder | mean ‖P_kP_kᵀ − I‖_F | ‖QQᵀ − I‖_F raw | ‖QQᵀ − I‖_F unit rows |",
        "|---|---|---|---|",
    ]
    for dec, r in groups.items():
        hg = _ms([x["head_gram"] for x in r], fmt=".3f") if r[0]["head_gram"] is not None else "—"
        cg = r[0]["class_gram"]
        raw = _ms([x["class_gram"]["QQT_raw"] for x in r], fmt=".3f") if cg else "—"
        unit = _ms([x["class_gram"]["QQT_unit"] for x in r], fmt=".3f") if cg else "—"
        lines.append(f"| {dec} | {hg} | {raw} | {unit} |")
    lines += [
        "",
        "val mIoU (%) with N(0, σ²) noise on every decoder weight (mean ± std over seeds):",
        "",
        "| decoder | σ=0 | " + " | ".join(f"σ={s:g}" for s in SIGMAS) + " |",
        "|---|---|" + "---|" * len(SIGMAS),
    ]
    for dec, r in groups.items():
        cells = [_ms([x["mIoU"] for x in r], 100)]
        cells += [_ms([x["noise_mIoU"][str(s)] for x in r], 100) for s in SIGMAS]
        lines.append(f"| {dec} | " + " | ".join(cells) + " |")
    return lines


def lr_check_report(rows: list[dict[str, Any]]) -> list[str]:
    """Seed-0 val mIoU of each decoder at each AdamW lr (is the shared lr unfair to one decoder?)."""
    lrs = sorted({r["lr"] for r in rows})
    lines = [
        "LR check, seed 0 (val mIoU %; the table above uses one shared lr for every decoder):",
        "",
        "| decoder | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " |",
        "|---|" + "---|" * len(lrs),
    ]
    for dec in DECODERS:
        cells = []
        for lr in lrs:
            r = [x for x in rows if x["decoder"] == dec and x["lr"] == lr]
            tag = "" if not r or r[0]["status"] == "completed" else f" ({r[0]['status']})"
            cells.append(f"{100 * r[0]['mIoU']:.1f}{tag}" if r else "—")
        lines.append(f"| {dec} | " + " | ".join(cells) + " |")
    return lines


def grid_report(ladder: list[dict[str, Any]], best: dict[tuple[str, str], list[dict[str, Any]]]) -> list[str]:
    lines = ["LR ladder, seed 0 (val mIoU %, status when not completed):", ""]
    lrs = sorted({(r["optimizer"], r["lr"]) for r in ladder})
    for opt in OPTIMIZERS:
        cols = [lr for o, lr in lrs if o == opt]
        if not cols:
            continue
        lines += [f"| {opt} encoder | " + " | ".join(f"lr {lr:g}" for lr in cols) + " |",
                  "|---|" + "---|" * len(cols)]  # fmt: skip
        for norm in NORMS:
            cells = []
            for lr in cols:
                r = [x for x in ladder if (x["norm"], x["optimizer"], x["lr"]) == (norm, opt, lr)]
                if not r:
                    cells.append("—")
                    continue
                tag = "" if r[0]["status"] == "completed" else f" ({r[0]['status']})"
                cells.append(f"{100 * r[0]['mIoU']:.1f}{tag}")
            lines.append(f"| {norm} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "At each cell's best seed-0 LR, mean ± std over seeds:",
        "",
        "| encoder | optimizer | best lr | seeds | val mIoU (%) | pixel acc (%) | train img/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for norm in NORMS:
        for opt in OPTIMIZERS:
            r = best.get((norm, opt), [])
            if not r:
                continue
            lines.append(
                f"| {norm} | {opt} | {r[0]['lr']:g} | {','.join(str(x['seed']) for x in r)} | "
                f"{_ms([x['mIoU'] for x in r], 100)} | {_ms([x['aAcc'] for x in r], 100)} | "
                f"{_ms([x['train_images_per_s'] for x in r], fmt='.0f')} |"
            )
    return lines


# ------------------------------------------------------------------------------------------------ main
def _floats(text: str) -> list[float]:
    vals = [float(v) for v in text.split(",") if v.strip()]
    if not vals or not all(np.isfinite(v) and v > 0 for v in vals):
        raise ValueError(f"expected comma-separated positive learning rates, got {text!r}")
    return vals


def _spec(
    base: dict[str, Any], out: Path, name: str, part: str, decoder: str, norm: str, optimizer: str,
    lr: float, seed: int, full: bool,
) -> dict[str, Any]:  # fmt: skip
    """One run's settings (also its cache key)."""
    return {**base, "part": part, "decoder": decoder, "norm": norm, "optimizer": optimizer, "lr": lr,
            "seed": seed, "full": full, "out_dir": str(out / "runs" / name)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "decoders", "grid"), default="all")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--train", type=int, default=2000, help="training canvases")
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-3, help="AdamW lr of the decoders part")
    ap.add_argument("--digits", default="0,1,2,3", help="glyph categories (comma-separated)")
    ap.add_argument("--ink", type=float, default=1.0, help="glyph grey level; -1 = random colours")
    ap.add_argument("--align", type=int, default=16, help="glyph corners on this pixel grid (1 = anywhere)")
    ap.add_argument(
        "--decoder-lrs",
        default="1e-4,3e-4,1e-3,1e-2",
        help="LR check: seed-0 runs of every decoder at these AdamW lrs",
    )
    ap.add_argument("--adamw-lrs", default="1e-3,3e-3,1e-2")
    ap.add_argument("--sgdw-lrs", default="0.03,0.1,0.3,1")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/depict")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:  # one run in this fresh process
        torch.set_num_threads(1)
        spec = json.loads(args.worker)
        row = worker_probe(spec) if spec["part"] == "probe" else worker_train(spec)
        Path(args.result).write_text(json.dumps(row))
        return 0
    if args.quick:
        args.steps, args.train, args.seeds, args.batch_size = 4, 64, 1, 8
    for name in ("steps", "batch_size", "train", "n_layer", "seeds", "align"):
        if getattr(args, name) < 1:
            print(f"bench_depict: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    try:
        digits = [int(d) for d in args.digits.split(",")]
        ladders = {"adamw": _floats(args.adamw_lrs), "sgdw": _floats(args.sgdw_lrs)}
        decoder_lrs = _floats(args.decoder_lrs)
        if not (np.isfinite(args.lr) and args.lr > 0):
            raise ValueError(f"--lr must be a positive number, got {args.lr}")
        if not (args.ink == -1 or 0 <= args.ink <= 1):
            raise ValueError(f"--ink must be -1 (random colours) or in [0, 1], got {args.ink}")
        from structlearn.data.segmentation import make_digit_mosaic

        mosaic = {"digits": digits, "ink": None if args.ink == -1 else args.ink, "align": args.align}
        make_digit_mosaic(n_train=1, n_val=1, **mosaic)  # type: ignore[arg-type]  # validates the options
    except ValueError as exc:
        print(f"bench_depict: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) / ("quick" if args.quick else "")
    base = {"steps": args.steps, "batch_size": args.batch_size, "train": args.train, "n_layer": args.n_layer,
            "mosaic": mosaic}  # fmt: skip
    t0 = time.time()
    sections: list[str] = []
    payload: dict[str, Any] = {"args": vars(args)}
    if args.part in ("all", "decoders"):
        rows, probes = [], {}
        for dec in DECODERS:
            p = {**base, "part": "probe", "decoder": dec}
            probes[dec] = run_cached(p, out / "runs" / f"probe_{dec}.json")["step_peak_mb"]
            for s in range(args.seeds):
                spec = _spec(base, out, f"{dec}_s{s}", "decoders", dec, "preln", "adamw", args.lr, s, True)
                rows.append(run_cached(spec, out / "runs" / f"{dec}_s{s}.json"))
        lr_rows = [r for r in rows if r["seed"] == 0]
        for dec in DECODERS:
            for lr in decoder_lrs:
                if lr == args.lr:
                    continue
                name = f"lrcheck_{dec}_lr{lr:g}_s0"
                spec = _spec(base, out, name, "lrcheck", dec, "preln", "adamw", lr, 0, False)
                lr_rows.append(run_cached(spec, out / "runs" / f"{name}.json"))
        tuned = {}  # each decoder at its own best seed-0 lr, all seeds
        for dec in DECODERS:
            ok = [r for r in lr_rows if r["decoder"] == dec and r["status"] == "completed"]
            top = max(ok, key=lambda r: r["mIoU"])
            if top["lr"] == args.lr:
                tuned[dec] = [r for r in rows if r["decoder"] == dec]
                continue
            tuned[dec] = [top]
            for s in range(1, args.seeds):
                name = f"lrcheck_{dec}_lr{top['lr']:g}_s{s}"
                spec = _spec(base, out, name, "lrcheck", dec, "preln", "adamw", top["lr"], s, False)
                tuned[dec].append(run_cached(spec, out / "runs" / f"{name}.json"))
        sections += [
            f"## Decoders (seeds 0..{args.seeds - 1}; Pre-LN encoder, AdamW lr {args.lr:g})",
            "",
            *decoders_report(rows, probes),
            "",
            *lr_check_report(lr_rows),
            "",
            "Each decoder at its own best seed-0 lr (mean ± std over seeds):",
            "",
            "| decoder | lr | seeds | val mIoU (%) | pixel acc (%) |",
            "|---|---|---|---|---|",
            *[
                f"| {dec} | {r[0]['lr']:g} | {','.join(str(x['seed']) for x in r)} | "
                f"{_ms([x['mIoU'] for x in r], 100)} | {_ms([x['aAcc'] for x in r], 100)} |"
                for dec, r in tuned.items()
            ],
            "",
        ]
        payload["decoders"], payload["probes"], payload["lr_check"] = rows, probes, lr_rows
        payload["tuned"] = tuned
    if args.part in ("all", "grid"):
        ladder, best = [], {}
        for norm in NORMS:
            for opt in OPTIMIZERS:
                cell = []
                for lr in ladders[opt]:
                    name = f"grid_{norm}_{opt}_lr{lr:g}_s0"
                    spec = _spec(base, out, name, "grid", "depict-sa", norm, opt, lr, 0, False)
                    cell.append(run_cached(spec, out / "runs" / f"{name}.json"))
                ladder += cell
                ok = [r for r in cell if r["status"] == "completed" and np.isfinite(r["mIoU"])]
                if not ok:
                    continue
                top = max(ok, key=lambda r: r["mIoU"])
                seeds = [top]
                for s in range(1, args.seeds):
                    name = f"grid_{norm}_{opt}_lr{top['lr']:g}_s{s}"
                    spec = _spec(base, out, name, "grid", "depict-sa", norm, opt, top["lr"], s, False)
                    seeds.append(run_cached(spec, out / "runs" / f"{name}.json"))
                best[(norm, opt)] = seeds
        sections += [
            f"## DNT vs Pre-LN encoders × SGDW vs AdamW (DEPICT-SA; seeds 0..{args.seeds - 1} at best LR)",
            "",
            *grid_report(ladder, best),
            "",
        ]
        payload["grid_ladder"] = ladder
        payload["grid_best"] = {f"{n}+{o}": r for (n, o), r in best.items()}
    wall = time.time() - t0
    trained = [r for r in _RUNS.values() if "wall_s" in r]
    header = [
        f"Task: DigitMosaic-Seg, digits {args.digits} ({len(digits) + 1} classes with background), ink "
        f"{'random colours' if args.ink == -1 else args.ink}, glyph grid {args.align} px, 32×32 canvases, "
        f"{args.train} train / 300 val, data seed 1234. Encoder: ViT patch 4 (64 tokens), d 64, "
        f"{args.n_layer} blocks, LayerNorm. Budget: {args.steps} steps × batch {args.batch_size}, warmup "
        f"{min(50, args.steps // 10)}, cosine to 0.1×, weight decay 0, 1 thread, each run a fresh process. "
        f"{len(trained)} training runs, their training wall times (the engine's, without the diagnostics) "
        f"sum to {sum(r['wall_s'] for r in trained) / 60:.1f} min; this invocation took {wall / 60:.1f} min "
        "(runs cached under runs/ are not re-run).",
        "",
    ]
    body = "\n".join(header + sections)
    print(body)
    if not args.quick:
        from structlearn.utils.harness import write_report

        payload["wall_s"] = wall
        name = "depict" if args.part == "all" else f"depict_{args.part}"
        write_report(Path(args.out), name, f"DEPICT benchmark ({args.part}, DigitMosaic-Seg)", body, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
