"""``structlearn cluster FEATURES --method NAME --n-clusters K``: cluster a feature file.

Reads features (.npy / .npz / .csv), builds the estimator from the registry (``--param key=value`` is
validated through ``set_params`` before anything runs), fits it, prints ACC/NMI/ARI when labels are
known (``--labels`` or a ``y`` array / label column in the feature file), writes the labels
(``--out``, atomic) and PNG plots (``--plots DIR``). All input checks happen before any file is
written, so a bad input leaves no output behind.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from structlearn.cluster.metrics import evaluate
from structlearn.cluster.registry import available_methods, make_estimator, parse_param
from structlearn.data.features import load_features, load_labels
from structlearn.utils.io import check_output_path, save_npy, write_json
from structlearn.utils.validation import check_features, check_int, check_labels, check_not_an_input


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cluster",
        help="cluster a feature file (k-means, spectral, EnSC, SSC-OMP, SENet, ...)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("features", help="feature file: .npy (N×D), .npz (X [, y]) or .csv")
    p.add_argument(
        "--method", default="kmeans", help=f"one of: {', '.join(available_methods())} (default kmeans)"
    )
    p.add_argument("--n-clusters", type=int, required=True, help="number of clusters K")
    p.add_argument("--labels", help="ground-truth labels (.npy/.csv) for ACC/NMI/ARI")
    p.add_argument("--label-column", help="CSV only: index or header name of a label column")
    p.add_argument("--out", help="write predicted labels here (.npy)")
    p.add_argument("--metrics-out", help="write the metrics and timing here (.json)")
    p.add_argument("--plots", help="folder for PNG plots (projection, sorted affinity)")
    p.add_argument("--seed", type=int, default=0, help="random_state of the estimator (default 0)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="estimator parameter (repeatable), e.g. --param n_neighbors=15",
    )
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _check_out(path: str | None, suffix: str, flag: str) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise ValueError(f"{flag} must end in {suffix}, got {p.name!r}")
    return check_output_path(p, flag)  # writable, right kind: checked before any work


def _jsonable(value: Any) -> Any:
    """A --param value as JSON records it (tuples as lists; anything else JSON lacks as its repr)."""
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, int | float | str | bool | None) else repr(value)


def run(args: argparse.Namespace) -> int:
    threads = check_int("--threads", args.threads, minimum=1)
    torch.set_num_threads(threads)
    threadpool_limits(threads)  # numpy/scipy BLAS too: oversubscribed BLAS is many times slower
    out = _check_out(args.out, ".npy", "--out")
    metrics_out = _check_out(args.metrics_out, ".json", "--metrics-out")
    for path, flag in ((out, "--out"), (metrics_out, "--metrics-out")):
        check_not_an_input(path, flag, (args.features, args.labels))
    plots = Path(args.plots) if args.plots else None
    if plots is not None:
        check_output_path(plots, "--plots", directory=True)
    params = dict(parse_param(t) for t in args.param)
    for key, flag in (("n_clusters", "--n-clusters"), ("random_state", "--seed")):
        if key in params:  # else make_estimator raises a TypeError (sweep: traceback)
            raise ValueError(f"--param {key}=... is not allowed: use {flag}")
    label_col: int | str | None = args.label_column
    if isinstance(label_col, str) and label_col.lstrip("-").isdigit():
        label_col = int(label_col)

    # Everything that can reject the input runs before fitting and before any file is written.
    est = make_estimator(args.method, args.n_clusters, random_state=args.seed, **params)
    if "verbose" in est.get_params(deep=False) and not args.quiet:
        est.set_params(verbose=True)
    X_raw, y = load_features(args.features, label_column=label_col)
    X = check_features(
        X_raw,
        min_samples=max(args.n_clusters, 2),
        min_samples_reason=f"--n-clusters {args.n_clusters}" if args.n_clusters >= 2 else None,
    )
    if args.labels:
        y = load_labels(args.labels)
    if y is not None:
        y = check_labels(y, X.shape[0], name="labels")

    stages = ["fit"] + (["metrics"] if y is not None else []) + (["plots"] if plots else [])
    bar = tqdm(total=len(stages), desc=f"cluster {args.method}", disable=args.quiet, file=sys.stderr)
    t0 = time.perf_counter()
    bar.set_postfix_str("fit")
    labels = np.asarray(est.fit_predict(X), dtype=np.int64)
    fit_seconds = time.perf_counter() - t0
    bar.update(1)
    report: dict[str, Any] = {
        "method": args.method,
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_clusters": int(args.n_clusters),
        "seed": int(args.seed),
        "params": {k: _jsonable(v) for k, v in params.items()},
        "fit_seconds": fit_seconds,
        "n_clusters_found": int(np.unique(labels).size),
    }
    if y is not None:
        bar.set_postfix_str("metrics")
        report["metrics"] = evaluate(y, labels)
        bar.update(1)
    if plots is not None:
        from structlearn.cluster.plots import plot_affinity, plot_embedding_2d

        bar.set_postfix_str("plots")
        plot_embedding_2d(
            X, labels, plots / f"{args.method}_projection.png", true_labels=y, title=f"{args.method}: 2-D PCA"
        )
        A = getattr(est, "affinity_matrix_", None)
        if A is not None:
            # Trained on a subset (max_train_samples), the affinity covers only the training rows.
            rows = getattr(est, "train_indices_", None) if A.shape[0] != labels.shape[0] else None
            plot_affinity(
                A,
                labels if rows is None else labels[rows],
                plots / f"{args.method}_affinity.png",
                true_labels=y if y is None or rows is None else y[rows],
                title=f"{args.method} affinity" + ("" if rows is None else f" ({len(rows):,} training rows)"),
            )
        bar.update(1)
    bar.close()
    if out is not None:
        save_npy(out, labels)
    if metrics_out is not None:
        write_json(metrics_out, report)

    line = (
        f"{args.method}: {X.shape[0]} samples, {report['n_clusters_found']} clusters, fit {fit_seconds:.2f} s"
    )
    if "metrics" in report:
        m = report["metrics"]
        line += f" | ACC {m['acc']:.4f}  NMI {m['nmi']:.4f}  ARI {m['ari']:.4f}"
    print(line)
    if args.quiet is False and "metrics" in report:
        print(json.dumps({k: round(v, 6) for k, v in report["metrics"].items()}))
    return 0
