"""``structlearn segment`` (alias ``segment-sequence``): segment one video's per-frame features.

    structlearn segment FEATURES.npy --n-clusters K [--labels L.npy] [--out labels.npy]
        [--plot seg.png] [--window s] [--min-segment N] [--seed S] [--method tr2c|tsc]

FEATURES is a ``.npy`` (T × D; labels auto-read from ``<stem>.labels.npy`` if present) or a ``.npz``
with ``features`` and optional ``labels`` (see :mod:`structlearn.data.sequences`). With labels the
command prints ACC / NMI / ARI (after ``--min-segment`` post-processing as a separate line). Bad input
(too few frames for the window or for K, NaN frames, labels of the wrong length, wrong output
suffixes) is reported in one line with exit code 2 before anything is written.
"""

from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path
from typing import Any

from structlearn.cluster.methods.tr2c import TR2C
from structlearn.cluster.methods.tsc import TSC
from structlearn.cluster.metrics import evaluate
from structlearn.cluster.segmentation import remove_short_segments
from structlearn.data.sequences import load_feature_sequence, segments_from_labels
from structlearn.utils.io import check_output_path, save_npy
from structlearn.utils.validation import check_not_an_input

METHODS: dict[str, type] = {"tr2c": TR2C, "tsc": TSC}
# CLI flag → estimator parameter; unset flags are not passed, so each estimator keeps its default.
FLAG_PARAMS = {"window": "window", "lambda1": "lambda1", "lambda2": "lambda2", "iters": "n_iters"}


def _defaults(param: str) -> str:
    """'default: TR2C 10.0, TSC 1.0', read from the estimators' signatures."""
    shown = []
    for cls in METHODS.values():
        par = inspect.signature(cls.__init__).parameters.get(param)
        if par is not None:
            shown.append(f"{cls.__name__} {par.default}")
    return "default: " + ", ".join(shown)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "segment",
        aliases=["segment-sequence"],
        help="segment a sequence of frame features into motions (TR2C)",
        description="Temporal clustering of one video's per-frame features into K motions.",
    )
    p.add_argument("features", help=".npy (T × D) or .npz (features[, labels]) of one video")
    p.add_argument("--n-clusters", "-k", type=int, required=True, help="number of motions K")
    p.add_argument("--labels", help="per-frame ground-truth labels (.npy, length T) for metrics")
    p.add_argument("--out", help="write the predicted per-frame labels here (.npy)")
    p.add_argument("--plot", help="write true vs predicted segments as coloured bars (.png)")
    # Estimator parameters: no literals here, the defaults shown and used are the estimators' own
    # (issue 10.5: the CLI once defaulted lambda2 to 1.0 while TR2C defaults to 10.0).
    p.add_argument("--window", type=int, default=None, help=f"temporal window s ({_defaults('window')})")
    p.add_argument("--min-segment", type=int, default=0, help="merge segments shorter than N frames (0: off)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--method", choices=sorted(METHODS), default="tr2c", help="tr2c (default) or the TSC baseline"
    )
    p.add_argument(
        "--iters", type=int, default=None, help=f"TR2C training iterations ({_defaults('n_iters')})"
    )
    p.add_argument(
        "--lambda1", type=float, default=None, help=f"weight of the compression term ({_defaults('lambda1')})"
    )
    p.add_argument(
        "--lambda2", type=float, default=None, help=f"weight of the temporal term ({_defaults('lambda2')})"
    )
    p.set_defaults(func=run)


def _check_output(path: str | None, suffix: str, flag: str, inputs: tuple[Any, ...]) -> None:
    """Suffix, writability and "not an input file" of an output path: checked before the fit."""
    if path is None:
        return
    if Path(path).suffix.lower() != suffix:
        raise ValueError(f"{flag} must name a {suffix} file, got {path!r}")
    check_output_path(Path(path), flag)
    check_not_an_input(path, flag, inputs)


def run(args: argparse.Namespace) -> int:
    # The labels a .npy sequence picks up from beside it (video.labels.npy) are an input too.
    inputs = (args.features, args.labels, Path(args.features).with_suffix(".labels.npy"))
    _check_output(args.out, ".npy", "--out", inputs)
    _check_output(args.plot, ".png", "--plot", inputs)
    if args.min_segment < 0:
        raise ValueError(f"--min-segment must be >= 0, got {args.min_segment}")
    cls = METHODS[args.method]
    accepted = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    for flag, param in FLAG_PARAMS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if param not in accepted:
            raise ValueError(f"--{flag} does not apply to --method {args.method}")
        kwargs[param] = value
    X, y = load_feature_sequence(args.features, args.labels)
    T, D = X.shape
    K = args.n_clusters
    s = kwargs.get("window", accepted["window"].default)
    if K < 1:
        raise ValueError(f"--n-clusters must be >= 1, got {K}")
    if K > T:
        raise ValueError(f"the sequence has {T} frames, fewer than --n-clusters {K}")
    if s < 1:
        raise ValueError(f"--window must be >= 1, got {s}")
    if s >= T:
        raise ValueError(f"the sequence has {T} frames, not more than the window {s}")
    est = cls(K, random_state=args.seed, **kwargs)
    t0 = time.perf_counter()
    raw = est.fit(X).labels_
    seconds = time.perf_counter() - t0
    post = remove_short_segments(raw, args.min_segment) if args.min_segment > 1 else None

    print(
        f"{Path(args.features).name}: {T} frames × {D} features, K={K}, "
        f"{args.method.upper()} (window {s}), {seconds:.1f} s"
    )
    print(
        f"segments predicted: {len(segments_from_labels(raw))}"
        + (f" (true: {len(segments_from_labels(y))})" if y is not None else "")
    )
    if y is not None:
        m = evaluate(y, raw)
        print(f"ACC {m['acc']:.4f}  NMI {m['nmi']:.4f}  ARI {m['ari']:.4f}")
    if post is not None:
        line = f"after --min-segment {args.min_segment}: {len(segments_from_labels(post))} segments"
        if y is not None:
            m = evaluate(y, post)
            line += f", ACC {m['acc']:.4f}  NMI {m['nmi']:.4f}  ARI {m['ari']:.4f}"
        print(line)
    final = post if post is not None else raw
    if args.out:
        save_npy(args.out, final)
        print(f"labels written to {args.out}")
    if args.plot:
        from structlearn.cluster.plots import plot_segmentation  # matplotlib only when a figure is asked for

        rows = ([("true", y)] if y is not None else []) + [(args.method, raw)]
        if post is not None:
            rows.append((f"{args.method} ≥{args.min_segment}", post))
        plot_segmentation(rows, args.plot, title=f"{Path(args.features).name}: K={K}")
        print(f"figure written to {args.plot}")
    return 0
