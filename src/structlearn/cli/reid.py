"""``structlearn reid train|eval``: unsupervised person re-identification (CACL and its baselines).

    structlearn reid train [--data DIR | --shortcut S] [--method cacl] [--epochs N] --out RUN
    structlearn reid eval RUN[/model.safetensors] [--data DIR | --shortcut S]

Data: a Market-1501-style folder (``DIR/bounding_box_train``, ``DIR/query``, ``DIR/bounding_box_test``,
file names ``<pid>_c<cam>…``), or the procedural pedestrians (no download; ``--shortcut`` sets the colour
shortcut's strength, ``--data-seed`` the draw). ``train`` writes RUN/model.safetensors (weights + the
backbone config and the training image size, no pickle), RUN/history.json (per-epoch mAP, CMC,
pseudo-label NMI/ARI, eps, cluster count; the final pseudo-labels; CACL's grayscale-branch metrics) and
two plots: RUN/progress.png and RUN/ranklists.png (top-5 gallery images of a few queries,
green = same identity). Every output path is checked before training starts, and the outputs are
published together after training (a failed run writes nothing, not even RUN). ``eval`` reads only
query/ and bounding_box_test/ and resizes them to the model's training size unless ``--size`` is given
(a different size is evaluated, with a warning).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from structlearn.cli import checkpoint_file, one_line_error
from structlearn.data.reid import ReIDDataset, ReIDSplit, load_reid_folder, make_reid_dataset
from structlearn.reid.backbone import ReIDNet, ReIDNetConfig
from structlearn.reid.evaluation import evaluate_model
from structlearn.reid.trainer import CLUSTER_ON, MEMORIES, METHODS, ReIDConfig, train_reid
from structlearn.utils.io import check_output_path, publish_together, write_json
from structlearn.utils.plotting import save_figure, subplots
from structlearn.utils.validation import check_int

DEFAULTS = ReIDConfig()  # one source of defaults: the config's
DEFAULT_SIZE = (64, 32)  # folder data's (H, W) for training, and for models that did not record theirs
MODEL_NAME = "model.safetensors"
# Everything `train` writes under --out (save_checkpoint adds the readable model.json).
OUTPUTS = (MODEL_NAME, "model.json", "history.json", "progress.png", "ranklists.png")
FOLDERS = ("bounding_box_train", "query", "bounding_box_test")  # train, query, gallery


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", help="Market-1501-style folder (bounding_box_train/, query/, bounding_box_test/)"
    )
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help=f"resize (folder data; train: default {DEFAULT_SIZE[0]} {DEFAULT_SIZE[1]}, eval: the model's)",
    )
    p.add_argument(
        "--masks",
        help="folder data: person masks, the same sub-folders and file stems as --data, PNG (SiCL needs "
        "bounding_box_train/; query/ and bounding_box_test/ are read when present)",
    )
    p.add_argument("--shortcut", type=float, default=0.7, help="procedural data: colour-shortcut strength")
    p.add_argument("--data-seed", type=int, default=0, help="procedural data: seed of the draw")
    p.add_argument(
        "--outfits",
        type=int,
        default=1,
        help="procedural data: outfits per identity (> 1: clothes change; cc_* metrics are reported too)",
    )
    p.add_argument(
        "--pose-jitter",
        type=float,
        default=1.0,
        help="procedural data: pose jitter in [0, 2] (0: one silhouette per identity, the strongest "
        "body-shape cue)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reid", help="unsupervised person re-identification (CACL and baselines)")
    sub = p.add_subparsers(dest="reid_command", metavar="{train,eval}")
    sub.required = True
    t = sub.add_parser("train", help="train without identity labels, evaluate on query/gallery")
    t.error = one_line_error(t)  # type: ignore[method-assign] - build_parser patches only `reid` itself
    _data_args(t)
    t.add_argument("--method", choices=METHODS, default=DEFAULTS.method, help=f"default {DEFAULTS.method}")
    t.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help=f"default {DEFAULTS.epochs}")
    t.add_argument("--iters", type=int, default=DEFAULTS.iters_per_epoch, help="iterations per epoch")
    t.add_argument(
        "--eps", type=float, default=None, help="DBSCAN eps (default: chosen from training distances)"
    )
    t.add_argument("--focal-gamma", type=float, default=None, help="focal exponent (CACL default 2)")
    t.add_argument(
        "--pooling",
        choices=("avg", "gem"),
        default=None,
        help="global pooling of the backbone (default: the method's own, gem for cluster-contrast, else avg)",
    )
    t.add_argument(
        "--cluster-on",
        choices=CLUSTER_ON,
        default=DEFAULTS.cluster_on,
        help=f"memory the pseudo-labels come from (default {DEFAULTS.cluster_on}, the papers'); "
        "CACL: gray, both (helps under hue-only camera casts, costs without them); SiCL: mask, fused, "
        "rgb+mask (our extensions: docs/reid.md)",
    )
    t.add_argument(
        "--memory",
        choices=MEMORIES,
        default=None,
        help="memory bank (default: the method's own, centroid for cluster-contrast, else instance; "
        "centroid with cacl is our combination: docs/reid.md)",
    )
    t.add_argument("--seed", type=int, default=DEFAULTS.seed, help=f"default {DEFAULTS.seed}")
    t.add_argument("--out", required=True, help="run folder (created; must not hold a model already)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)
    e = sub.add_parser("eval", help="evaluate a trained model (mAP, CMC, mINP)")
    e.error = one_line_error(e)  # type: ignore[method-assign]
    e.add_argument("model", help="model.safetensors written by `structlearn reid train`, or its run folder")
    _data_args(e)
    e.set_defaults(func=run_eval)


def _size(args: argparse.Namespace) -> tuple[int, int] | None:
    """``--size`` checked (None when not given)."""
    if args.size is None:
        return None
    return check_int("--size H", args.size[0], minimum=1), check_int("--size W", args.size[1], minimum=1)


def _read_folders(args: argparse.Namespace, names: tuple[str, ...], size: tuple[int, int]) -> list[ReIDSplit]:
    """The ``--data`` sub-folders ``names`` (only those: eval never decodes the training images)."""
    root = Path(args.data)
    parts = [root / n for n in names]
    missing = [str(q) for q in parts if not q.is_dir()]
    if missing:
        raise ValueError(f"--data {root} lacks the folder(s): {', '.join(missing)}")
    mroot = Path(args.masks) if args.masks else None
    if mroot is not None and "bounding_box_train" in names and not (mroot / "bounding_box_train").is_dir():
        raise ValueError(f"--masks {mroot} lacks the folder bounding_box_train")
    # Masks are needed for training (SiCL) only; query/gallery masks are read when present.
    masks = [mroot / q.name if mroot is not None and (mroot / q.name).is_dir() else None for q in parts]
    return [load_reid_folder(q, size, m) for q, m in zip(parts, masks, strict=True)]


def _procedural(args: argparse.Namespace) -> ReIDDataset:
    if args.masks:
        raise ValueError("--masks goes with --data (the procedural data has exact silhouettes already)")
    return make_reid_dataset(
        shortcut=args.shortcut,
        seed=check_int("--data-seed", args.data_seed, minimum=0),
        outfits_per_id=args.outfits,
        pose_jitter=args.pose_jitter,
    )


def load_data(args: argparse.Namespace) -> ReIDDataset:
    """The training data: all three splits (``--size`` defaults to ``DEFAULT_SIZE``)."""
    size = _size(args) or DEFAULT_SIZE
    if not args.data:
        return _procedural(args)
    train, query, gallery = _read_folders(args, FOLDERS, size)
    if len(train) < 2:  # pseudo-labels cluster the training images: one cannot be clustered
        raise ValueError(
            f"--data {args.data}: bounding_box_train has {len(train)} usable image(s), training needs >= 2"
        )
    return ReIDDataset(train, query, gallery, {"folder": str(args.data)})


def load_eval_data(args: argparse.Namespace, size: tuple[int, int]) -> tuple[ReIDSplit, ReIDSplit]:
    """(query, gallery) only, folder images resized to ``size``."""
    if not args.data:
        data = _procedural(args)
        return data.query, data.gallery
    query, gallery = _read_folders(args, FOLDERS[1:], size)
    return query, gallery


def _check_out(out: Path) -> None:
    """Every output path, before any work; nothing is created (the folder comes with the outputs)."""
    check_output_path(out, "--out", directory=True)
    for name in OUTPUTS:  # a folder in the way is named here, not after training as a temporary file
        check_output_path(out / name, "--out")
    if (out / MODEL_NAME).exists():
        raise ValueError(f"--out {out} already holds a model; choose another folder")


def run_train(args: argparse.Namespace) -> int:
    from structlearn.train.checkpoint import save_checkpoint

    backbone = DEFAULTS.backbone if args.pooling is None else ReIDNetConfig(pooling=args.pooling)
    cfg = ReIDConfig(
        method=args.method,
        epochs=args.epochs,
        iters_per_epoch=args.iters,
        eps=args.eps,
        focal_gamma=args.focal_gamma,
        cluster_on=args.cluster_on,
        memory=args.memory,
        backbone=backbone,
        seed=args.seed,
        progress=not args.quiet,
    )
    out = Path(args.out)
    _check_out(out)
    data = load_data(args)
    if cfg.method == "sicl" and data.train.silhouettes is None:  # only folder data lacks them
        raise ValueError("--method sicl needs --masks (person masks of the training images)")
    res = train_reid(data, cfg)
    torch_state = {k: v.detach().clone() for k, v in res.model.state_dict().items()}
    config = {
        "backbone": dataclasses.asdict(res.model.config),
        "method": cfg.method,
        "input_size": list(data.train.images.shape[2:]),  # eval's default size
    }
    with publish_together():  # model, history and plots: all written or none (and no empty --out)
        save_checkpoint(out / MODEL_NAME, {"model": torch_state, "config": config})
        write_json(
            out / "history.json",
            {
                "final": res.final,
                "final_gray": res.final_gray,
                "eps": res.eps,
                "history": res.history,
                "pseudo_labels": res.pseudo_labels.tolist(),
            },
        )
        _plot_progress(res.history, out / "progress.png")
        _plot_ranklists(res.model, data, out / "ranklists.png")
    print(json.dumps({k: round(v, 4) for k, v in res.final.items()}))
    return 0


def _load_model(path: str) -> tuple[ReIDNet, tuple[int, int] | None]:
    """The network and its training image size (None: a model written before the size was recorded)."""
    from structlearn.train.checkpoint import load_checkpoint

    src = checkpoint_file(path, MODEL_NAME)  # a run folder, as `structlearn sample` accepts
    if src != Path(path) and not src.is_file():
        raise ValueError(f"{path} is a folder without {MODEL_NAME}; give the model file or its run folder")
    ckpt = load_checkpoint(src)
    try:
        b = ckpt["config"]["backbone"]
        cfg = ReIDNetConfig(**{**b, "widths": tuple(b["widths"])})
        net = ReIDNet(cfg)
        net.load_state_dict(ckpt["model"])
        size = ckpt["config"].get("input_size")
        if size is not None:
            h, w = size
            size = (check_int("input_size H", h, minimum=1), check_int("input_size W", w, minimum=1))
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{src} is not a `structlearn reid` model: {first}") from None
    return net, size


def run_eval(args: argparse.Namespace) -> int:
    net, trained = _load_model(args.model)
    query, gallery = load_eval_data(args, _size(args) or trained or DEFAULT_SIZE)
    if query.images.shape[1] != net.config.in_channels:
        raise ValueError(
            f"images have {query.images.shape[1]} channels, the model expects {net.config.in_channels}"
        )
    got = tuple(query.images.shape[2:])
    if trained is not None and got != trained:
        warnings.warn(
            f"evaluating {got[0]}×{got[1]} images; the model was trained on {trained[0]}×{trained[1]}",
            stacklevel=2,
        )
    print(json.dumps({k: round(v, 4) for k, v in evaluate_model(net, query, gallery).items()}))
    return 0


def _plot_progress(history: list[dict[str, Any]], path: Path) -> None:
    fig, ax = subplots(1, 1, figsize=(6, 3.5))
    ep = [h["epoch"] for h in history]
    for key in ("mAP", "R1", "pseudo_nmi", "pseudo_ari"):
        ax.plot(ep, [h[key] for h in history], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.legend()
    ax.set_title("retrieval and pseudo-label quality per epoch")
    save_figure(fig, path)


def _plot_ranklists(net: ReIDNet, data: ReIDDataset, path: Path, n_queries: int = 6, top: int = 5) -> None:
    q = net.embed(torch.from_numpy(data.query.images[:n_queries]))
    g = net.embed(torch.from_numpy(data.gallery.images))
    order = torch.argsort(2 - 2 * q @ g.T, dim=1)[:, :top].numpy()
    fig, axes = subplots(len(q), top + 1, figsize=(1.2 * (top + 1), 1.9 * len(q)))
    axes = np.atleast_2d(axes)
    for i in range(len(q)):
        axes[i, 0].imshow(data.query.images[i].transpose(1, 2, 0))
        axes[i, 0].set_title(f"query {data.query.pids[i]}", fontsize=7)
        for j, gi in enumerate(order[i]):
            ok = data.gallery.pids[gi] == data.query.pids[i]
            ax = axes[i, j + 1]
            ax.imshow(data.gallery.images[gi].transpose(1, 2, 0))
            for s in ax.spines.values():
                s.set_edgecolor("green" if ok else "red")
                s.set_linewidth(3)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    save_figure(fig, path)
