"""DEPICT (arXiv 2411.03033) vs Segmenter's mask transformer vs a linear head on DigitMosaic-Seg (issue 13).

Same encoder (ViT, patch 4 on 32×32 canvases → 64 tokens, d = 64, ``--n-layer`` blocks, Pre-LN) and the
same budget (``--steps`` AdamW steps of ``--batch-size``, cosine schedule) for every decoder; trained
jointly from scratch (the paper fine-tunes a pretrained ViT — impossible offline). Seeds 0..``--seeds``−1
(model init and batch order); the data (``data_seed`` 1234) is identical for all runs.

Measured per decoder: dataset-level val mIoU and pixel accuracy (mmseg conventions) as mean ± std
over seeds; decoder parameters and analytic forward FLOPs per image; training images/s; the engine's
peak-memory figure (JSON only: in one long-lived process the allocator reuses freed pages, so only
the first run's figure means anything); decoder-only inference images/s (decoder forward on fixed
encoder tokens, median of 5 repeats); ‖P_k P_kᵀ − I‖_F per head (mean over layers and heads; DEPICT
only); ‖QQᵀ − I‖_F of the class embeddings (raw and row-normalised); val mIoU after adding N(0, σ²)
noise to every decoder weight (one draw, seed 0, per σ). Each (decoder, seed) record is cached in
``<out>/runs/<decoder>_s<seed>.json`` and reused while steps, batch size, train size and depth match.

    python benchmarks/bench_depict.py            # full run (~12 min at 1 thread)
    python benchmarks/bench_depict.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from structlearn.models.segmentation import DECODERS, DepictDecoder, SegModel
from structlearn.train import TrainConfig
from structlearn.train.engine import Trainer
from structlearn.utils.harness import RunCache, grid, write_report

SIGMAS = (1e-3, 1e-2, 1e-1, 1.0)


def _eval(trainer: Trainer, model: SegModel) -> dict[str, float]:
    task = trainer.task
    return task.evaluate(model, torch.device("cpu"), lambda: torch.autocast("cpu", enabled=False))


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


def run(decoder: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cfg = TrainConfig(
        task="segment", decoder=decoder, seed=seed, steps=args.steps, batch_size=args.batch_size,
        n_layer=args.n_layer, n_head=2, n_embd=64, norm="preln", norm_type="layer", optimizer="adamw",
        lr=1e-3, weight_decay=0.0, warmup_steps=max(1, args.steps // 20), train_subset=args.train,
        eval_every=args.steps, log_every=max(1, args.steps // 5), progress=False, threads=1,
        out_dir=str(out / f"{decoder}_s{seed}"), checkpoint_every=0, final_checkpoint=False,
    )  # fmt: skip
    trainer = Trainer(cfg)
    res = trainer.fit()
    model: SegModel = trainer.model  # type: ignore[assignment]
    model.eval()
    final = _eval(trainer, model)
    noise = {}
    for sigma in SIGMAS:
        noisy = copy.deepcopy(model)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in noisy.decoder.parameters():
                p.add_(torch.randn(p.shape, generator=g) * sigma)
        noise[str(sigma)] = _eval(trainer, noisy)["test_mIoU"]
    x = trainer.task._normalise(trainer.task.x_test[:256])
    return {
        "decoder": decoder,
        "seed": seed,
        "status": res.status,
        "mIoU": final["test_mIoU"],
        "aAcc": final["test_acc"],
        "train_images_per_s": res.throughput,
        "peak_mb": res.peak_mb,
        "wall_s": res.wall_s,
        "decoder_params": model.decoder_params(),
        "decoder_mflops": model.decoder_flops() / 1e6,
        "decoder_images_per_s": _decoder_speed(model, x),
        "head_gram": _head_gram(model),
        "class_gram": _class_gram(model),
        "noise_mIoU": noise,
    }


def _ms(values: list[float], scale: float = 1.0, fmt: str = ".1f") -> str:
    v = [scale * x for x in values]
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):{fmt}} ± {sd:{fmt}}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--train", type=int, default=2000, help="training canvases")
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/depict")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.train, args.seeds = 4, 64, 1
    for name in ("steps", "batch_size", "train", "n_layer", "seeds"):
        if getattr(args, name) < 1:
            print(f"bench_depict: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    torch.set_num_threads(1)
    out = Path(args.out)
    t0 = time.time()
    # One cached record per (decoder, seed) under out/runs, reused while the settings are the same.
    settings = {k: getattr(args, k) for k in ("steps", "batch_size", "train", "n_layer")}
    cache, rows = RunCache(out / "runs"), []
    for spec in grid(decoder=DECODERS, seed=range(args.seeds)):
        dec, seed = spec["decoder"], spec["seed"]
        rec, _ = cache.run(
            f"{dec}_s{seed}",
            lambda dec=dec, seed=seed: {**run(dec, seed, args, out / "runs"), "settings": settings},
            valid=lambda r: r.get("settings") == settings,
        )
        rows.append(rec)
    wall = time.time() - t0
    lines = [
        f"Seeds 0..{args.seeds - 1}; {args.steps} AdamW steps × batch {args.batch_size} on {args.train} "
        f"canvases (32×32, patch 4, d 64, {args.n_layer} Pre-LN encoder blocks); val = 300 canvases; "
        "1 thread. "
        f"Wall time of this invocation {wall / 60:.1f} min (runs cached in runs/ are not re-trained).",
        "",
        "| decoder | val mIoU (%) | pixel acc (%) | decoder params | decoder MFLOPs/img | train img/s "
        "| decoder-only img/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for dec in DECODERS:
        r = [x for x in rows if x["decoder"] == dec]
        lines.append(
            f"| {dec} | {_ms([x['mIoU'] for x in r], 100)} | {_ms([x['aAcc'] for x in r], 100)} | "
            f"{r[0]['decoder_params']:,} | {r[0]['decoder_mflops']:.2f} | "
            f"{_ms([x['train_images_per_s'] for x in r], fmt='.0f')} | "
            f"{_ms([x['decoder_images_per_s'] for x in r], fmt='.0f')} |"
        )
    lines += [
        "",
        "Orthogonality (mean ± std over seeds):",
        "",
        "| decoder | mean ‖P_kP_kᵀ − I‖_F | ‖QQᵀ − I‖_F raw | ‖QQᵀ − I‖_F unit rows |",
        "|---|---|---|---|",
    ]
    for dec in DECODERS:
        r = [x for x in rows if x["decoder"] == dec]
        hg = _ms([x["head_gram"] for x in r], fmt=".3f") if r[0]["head_gram"] is not None else "—"
        cg = r[0]["class_gram"]
        raw = _ms([x["class_gram"]["QQT_raw"] for x in r], fmt=".3f") if cg else "—"
        unit = _ms([x["class_gram"]["QQT_unit"] for x in r], fmt=".3f") if cg else "—"
        lines.append(f"| {dec} | {hg} | {raw} | {unit} |")
    lines += ["", "val mIoU (%) with N(0, σ²) noise on every decoder weight (mean ± std over seeds):", "",
              "| decoder | " + " | ".join(f"σ={s:g}" for s in SIGMAS) + " |",
              "|---|" + "---|" * len(SIGMAS)]  # fmt: skip
    for dec in DECODERS:
        r = [x for x in rows if x["decoder"] == dec]
        lines.append(
            f"| {dec} | " + " | ".join(_ms([x["noise_mIoU"][str(s)] for x in r], 100) for s in SIGMAS) + " |"
        )
    body = "\n".join(lines)
    print(body)
    if not args.quick:
        write_report(out, "depict", "DEPICT vs Segmenter vs linear decoders (DigitMosaic-Seg)", body,
                     {"args": vars(args), "rows": rows, "wall_s": wall})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
