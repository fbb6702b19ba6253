"""Bad-input sweep (issue 11): hundreds of corrupt / empty / wrong-shape / NaN / huge / tiny inputs, bad
flags and bad parameters across the CLI commands and the API entry points, each classified.

    python benchmarks/bad_input_sweep.py [--out benchmarks/results/bad_input] [--limit N]

Every case runs in this process (the CLI through ``structlearn.cli.main``) at tiny sizes, single-threaded.
A case is one of:

- ``ok``: a bad input refused as promised (CLI: exit 2 with a one-line message and none of the command's
  output files left behind; API: a one-line ``ValueError``/``TypeError``), or a valid-but-odd input
  answered correctly (scaled blobs clustered with ACC 1);
- ``traceback``: any other exception escaping (CLI or API);
- ``multi-line``: an API error whose message spans several lines;
- ``wrong exit``: the CLI exited with a code other than 2 for a bad input (0: the input was accepted);
- ``leftover``: a failed command left one of its output files;
- ``silent wrong``: exit 0 / no error but a wrong answer (scaled blobs clustered with ACC < 1).

Writes ``sweep.md`` (counts per category and per group, and every case that is not ``ok``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from structlearn.cli import main  # noqa: E402
from structlearn.cluster.metrics import evaluate  # noqa: E402


@dataclass
class Case:
    group: str
    name: str
    run: Callable[[], Any]  # returns the CLI exit code, or raises for the API
    kind: str = "cli"  # "cli" or "api"
    expect: str = "error"  # "error", "answer" (check must pass), "either" (clean error or check)
    outputs: tuple[Path, ...] = ()
    check: Callable[[Any], bool] | None = None


def blobs(n_per: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, 0.3, (n_per, 2)) for c in ([0, 0], [3, 0], [0, 3])])
    return X, np.repeat(np.arange(3), n_per)


def make_files(d: Path) -> dict[str, Path]:
    """Bad (and a few good) input files; ``name`` → path."""
    rng = np.random.default_rng(0)
    X, y = blobs()
    f: dict[str, Path] = {}

    def save(name: str, arr: Any, **kw: Any) -> None:
        f[name] = d / name
        np.save(f[name], arr, **kw)

    save("good.npy", X.astype(np.float32))
    save("good_labels.npy", y)
    for name, data in {
        "empty.npy": None,
        "rand.npy": rng.bytes(300),
        "truncated.npy": None,
        "text.npy": b"1,2,3\n4,5,6\n",
        "empty.npz": b"",
        "rand.npz": rng.bytes(300),
        "empty.csv": b"",
        "blank.csv": b"\n\n",
        "ragged.csv": b"1,2,3\n4,5\n6,7,8\n",
        "words.csv": b"a,b\nc,d\ne,f\n",
        "nan.csv": b"1,2\nnan,3\n4,5\n",
        "latin1.csv": "é,1\n".encode("latin-1"),
        "header_only.csv": b"a,b,c\n",
        "empty.txt": b"",
        "bad.suffix": b"1,2\n",
    }.items():
        f[name] = d / name
        f[name].write_bytes(b"" if data is None else data)
    good = f["good.npy"].read_bytes()
    f["truncated.npy"].write_bytes(good[: len(good) // 2])
    np.savetxt(
        d / "label_header.csv", np.hstack([X, y[:, None]]), delimiter=",", header="a,b,label", comments=""
    )
    f["label_header.csv"] = d / "label_header.csv"
    save("nan.npy", np.where(rng.random(X.shape) < 0.05, np.nan, X))
    save("inf.npy", np.where(rng.random(X.shape) < 0.05, np.inf, X))
    save("allnan.npy", np.full_like(X, np.nan))
    save("1d.npy", X[:, 0])
    save("3d.npy", X[:, :, None])
    save("0d.npy", np.float64(3.0))
    save("zero_rows.npy", np.zeros((0, 2)))
    save("zero_cols.npy", np.zeros((60, 0)))
    save("one_row.npy", X[:1])
    save("two_rows.npy", X[:2])
    save("constant.npy", np.ones((60, 2)))
    save("zeros.npy", np.zeros((60, 2)))
    save("strings.npy", np.array([["a", "b"]] * 60))
    save("objects.npy", np.array([[1, "a"]] * 60, dtype=object), allow_pickle=True)
    save("complex.npy", X.astype(np.complex64))
    save("bool.npy", X > 1)
    save("huge1e30.npy", X * 1e30)
    save("huge1e299.npy", X * 1e299)
    save("huge1e16.npy", X * 1e16)
    save("tiny1e-300.npy", X * 1e-300)
    save("tiny1e-30.npy", X * 1e-30)
    save("scaled1e12.npy", X * 1e12)
    save("scaled1e-12.npy", X * 1e-12)
    save("int_big.npy", (X * 1e17).astype(np.int64))
    save("float16.npy", X.astype(np.float16))
    save("wide.npy", rng.normal(size=(4, 500)))
    np.savez(d / "noX.npz", Z=X)
    f["noX.npz"] = d / "noX.npz"
    np.savez(d / "objX.npz", X=np.array([[1, "a"]] * 5, dtype=object))
    f["objX.npz"] = d / "objX.npz"
    (d / "folder.npy").mkdir()
    f["folder.npy"] = d / "folder.npy"
    f["missing.npy"] = d / "missing.npy"
    # labels
    save("labels_short.npy", y[:10])
    save("labels_2d.npy", y[:, None])
    save("labels_float.npy", y + 0.5)
    save("labels_nan.npy", np.where(np.arange(60) == 3, np.nan, y.astype(float)))
    save("labels_str.npy", np.array(["a"] * 60))
    save("labels_empty_arr.npy", np.zeros(0, dtype=np.int64))
    return f


def cli_cases(f: dict[str, Path], d: Path) -> list[Case]:
    cases: list[Case] = []
    _, y = blobs()
    acc1 = lambda labels: evaluate(y, np.load(labels))["acc"] == 1.0  # noqa: E731
    feature_bad = [
        "empty.npy",
        "rand.npy",
        "truncated.npy",
        "text.npy",
        "empty.npz",
        "rand.npz",
        "empty.csv",
        "blank.csv",
        "ragged.csv",
        "words.csv",
        "nan.csv",
        "latin1.csv",
        "header_only.csv",
        "empty.txt",
        "bad.suffix",
        "label_header.csv",
        "nan.npy",
        "inf.npy",
        "allnan.npy",
        "1d.npy",
        "3d.npy",
        "0d.npy",
        "zero_rows.npy",
        "zero_cols.npy",
        "one_row.npy",
        "two_rows.npy",
        "constant.npy",
        "zeros.npy",
        "strings.npy",
        "objects.npy",
        "complex.npy",
        "huge1e30.npy",
        "huge1e299.npy",
        "huge1e16.npy",
        "tiny1e-300.npy",
        "tiny1e-30.npy",
        "int_big.npy",
        "noX.npz",
        "objX.npz",
        "folder.npy",
        "missing.npy",
    ]
    for method in ("kmeans", "ensc", "spectral"):
        for name in feature_bad:
            out = d / f"c_{method}_{name}.npy"
            argv = [
                "cluster",
                str(f[name]),
                "--method",
                method,
                "--n-clusters",
                "3",
                "--quiet",
                "--out",
                str(out),
            ]
            cases.append(
                Case("cli cluster: bad feature file", f"{method} {name}", _cli(argv), outputs=(out,))
            )
        for name in ("scaled1e12.npy", "scaled1e-12.npy", "float16.npy", "good.npy"):
            out = d / f"c_{method}_{name}_ok.npy"
            argv = [
                "cluster",
                str(f[name]),
                "--method",
                method,
                "--n-clusters",
                "3",
                "--quiet",
                "--out",
                str(out),
            ]
            # Scaled blobs are valid input: k-means must still find them exactly.
            expect, check = ("answer", (lambda o=out: acc1(o))) if method == "kmeans" else ("either", None)
            cases.append(
                Case("cli cluster: odd but valid", f"{method} {name}", _cli(argv), expect=expect, check=check)
            )
        good = str(f["good.npy"])
        flag_bad: list[tuple[str, list[str]]] = [
            ("k=0", ["--n-clusters", "0"]),
            ("k=-1", ["--n-clusters", "-1"]),
            ("k=1000", ["--n-clusters", "1000"]),
            ("k=abc", ["--n-clusters", "abc"]),
            ("k=2.5", ["--n-clusters", "2.5"]),
            ("labels short", ["--n-clusters", "3", "--labels", str(f["labels_short.npy"])]),
            ("labels 2d", ["--n-clusters", "3", "--labels", str(f["labels_2d.npy"])]),
            ("labels float", ["--n-clusters", "3", "--labels", str(f["labels_float.npy"])]),
            ("labels nan", ["--n-clusters", "3", "--labels", str(f["labels_nan.npy"])]),
            ("labels str", ["--n-clusters", "3", "--labels", str(f["labels_str.npy"])]),
            ("labels empty file", ["--n-clusters", "3", "--labels", str(f["empty.npy"])]),
            ("labels random bytes", ["--n-clusters", "3", "--labels", str(f["rand.npy"])]),
            ("labels folder", ["--n-clusters", "3", "--labels", str(f["folder.npy"])]),
            ("labels missing", ["--n-clusters", "3", "--labels", str(f["missing.npy"])]),
            ("out .txt", ["--n-clusters", "3", "--out", str(d / "x.txt")]),
            ("metrics .npy", ["--n-clusters", "3", "--metrics-out", str(d / "m.npy")]),
            ("param no =", ["--n-clusters", "3", "--param", "foo"]),
            ("param unknown", ["--n-clusters", "3", "--param", "foo=1"]),
            ("param bad value", ["--n-clusters", "3", "--param", "random_state=abc"]),
            ("threads 0", ["--n-clusters", "3", "--threads", "0"]),
            ("threads -2", ["--n-clusters", "3", "--threads", "-2"]),
            ("label-column npy", ["--n-clusters", "3", "--label-column", "0"]),
            ("unknown flag", ["--n-clusters", "3", "--bogus"]),
        ]
        for name, extra in flag_bad:
            out = d / f"f_{method}_{len(cases)}.npy"
            argv = ["cluster", good, "--method", method, "--quiet", "--out", str(out), *extra]
            cases.append(Case("cli cluster: bad flag", f"{method} {name}", _cli(argv), outputs=(out,)))
    for name in ("nope", "", "KMEANS"):
        cases.append(
            Case(
                "cli cluster: bad flag",
                f"method {name!r}",
                _cli(["cluster", str(f["good.npy"]), "--method", name, "--n-clusters", "3"]),
            )
        )

    # segment
    seq_bad = [
        "empty.npy",
        "rand.npy",
        "truncated.npy",
        "empty.npz",
        "rand.npz",
        "nan.npy",
        "inf.npy",
        "1d.npy",
        "3d.npy",
        "zero_rows.npy",
        "zero_cols.npy",
        "one_row.npy",
        "two_rows.npy",
        "strings.npy",
        "objects.npy",
        "complex.npy",
        "huge1e30.npy",
        "huge1e299.npy",
        "tiny1e-300.npy",
        "noX.npz",
        "folder.npy",
        "missing.npy",
        "good.csv-missing",
    ]
    for method in ("tr2c", "tsc"):
        extra_m = ["--iters", "3"] if method == "tr2c" else []
        for name in seq_bad:
            path = f.get(name, d / name)
            out = d / f"s_{method}_{name}.npy"
            argv = ["segment", str(path), "-k", "3", "--method", method, *extra_m, "--out", str(out)]
            cases.append(
                Case("cli segment: bad feature file", f"{method} {name}", _cli(argv), outputs=(out,))
            )
        good = str(f["good.npy"])
        flags: list[tuple[str, list[str]]] = [
            ("k=0", ["-k", "0"]),
            ("k=100", ["-k", "100"]),
            ("window 0", ["-k", "3", "--window", "0"]),
            ("window 1000", ["-k", "3", "--window", "1000"]),
            ("lambda2 -1", ["-k", "3", "--lambda2", "-1"]),
            ("lambda1 nan", ["-k", "3", "--lambda1", "nan"]),
            ("lambda2 inf", ["-k", "3", "--lambda2", "inf"]),
            ("min-segment -1", ["-k", "3", "--min-segment", "-1"]),
            ("out .txt", ["-k", "3", "--out", str(d / "o.txt")]),
            ("plot .jpg", ["-k", "3", "--plot", str(d / "p.jpg")]),
            ("labels empty", ["-k", "3", "--labels", str(f["empty.npy"])]),
            ("labels short", ["-k", "3", "--labels", str(f["labels_short.npy"])]),
            ("labels rand", ["-k", "3", "--labels", str(f["rand.npy"])]),
            ("labels folder", ["-k", "3", "--labels", str(f["folder.npy"])]),
            ("labels float", ["-k", "3", "--labels", str(f["labels_float.npy"])]),
            ("seed -1", ["-k", "3", "--seed", "-1"]),
            ("method nope", ["-k", "3", "--method", "nope"]),
        ]
        if method == "tr2c":
            flags += [("iters 0", ["-k", "3", "--iters", "0"]), ("iters -5", ["-k", "3", "--iters", "-5"])]
        else:
            flags += [("iters with tsc", ["-k", "3", "--iters", "5"])]
        for name, extra in flags:
            out = d / f"sf_{method}_{len(cases)}.npy"
            it = extra_m if "--iters" not in extra else []
            argv = ["segment", good, "--method", method, *it, "--out", str(out), *extra]
            if name == "method nope":
                argv = ["segment", good, *extra]
            cases.append(Case("cli segment: bad flag", f"{method} {name}", _cli(argv), outputs=(out,)))

    # train (tiny ViT on digits; bad flags must fail before any training)
    base = [
        "train",
        "--task",
        "image",
        "--dataset",
        "digits",
        "--steps",
        "2",
        "--n-layer",
        "1",
        "--n-head",
        "2",
        "--n-embd",
        "16",
        "--batch-size",
        "16",
        "--train-subset",
        "64",
        "--eval-every",
        "1000",
        "--eval-batches",
        "1",
        "--no-progress",
        "--threads",
        "1",
    ]
    train_bad: list[tuple[str, list[str]]] = [
        ("steps 0", ["--steps", "0"]),
        ("steps -1", ["--steps", "-1"]),
        ("steps abc", ["--steps", "abc"]),
        ("lr -1", ["--lr", "-1"]),
        ("lr nan", ["--lr", "nan"]),
        ("lr inf", ["--lr", "inf"]),
        ("batch 0", ["--batch-size", "0"]),
        ("batch > data", ["--batch-size", "1000"]),
        ("augment-shift 40", ["--augment-shift", "40"]),
        ("augment-shift -1", ["--augment-shift", "-1"]),
        ("dataset nope", ["--dataset", "nope"]),
        ("task nope", ["--task", "nope"]),
        ("optimizer nope", ["--optimizer", "nope"]),
        ("norm nope", ["--norm", "nope"]),
        ("n-head 3 (16 % 3)", ["--n-head", "3"]),
        ("n-layer 0", ["--n-layer", "0"]),
        ("n-embd -16", ["--n-embd", "-16"]),
        ("label-noise 2", ["--label-noise", "2"]),
        ("label-noise -0.1", ["--label-noise", "-0.1"]),
        ("train-subset 0", ["--train-subset", "0"]),
        ("eps -1", ["--eps", "-1"]),
        ("momentum 1.5", ["--momentum", "1.5"]),
        ("warmup > steps", ["--warmup-steps", "10"]),
        ("grad-clip -1", ["--grad-clip", "-1"]),
        ("device nope", ["--device", "nope"]),
        ("threads 0", ["--threads", "0"]),
        ("patch 5 (8 % 5)", ["--patch-size", "5"]),
        ("resume missing", ["--resume", str(f["missing.npy"])]),
        ("resume empty", ["--resume", str(f["empty.npy"])]),
        ("resume random", ["--resume", str(f["rand.npy"])]),
        ("resume folder", ["--resume", str(f["folder.npy"])]),
        ("resume npy", ["--resume", str(f["good.npy"])]),
        ("unknown flag", ["--bogus"]),
    ]
    for name, extra in train_bad:
        out = d / f"t_{len(cases)}"
        cases.append(
            Case("cli train: bad flag", name, _cli([*base, "--out-dir", str(out), *extra]), outputs=(out,))
        )
    return cases


def _cli(argv: list[str]) -> Callable[[], int]:
    def run() -> int:
        try:
            return main(argv)
        except SystemExit as exc:  # argparse
            return int(exc.code) if isinstance(exc.code, int) else 1

    return run


def api_cases(f: dict[str, Path]) -> list[Case]:
    from structlearn.cluster.methods.baselines import SSCOMP, EnSC, KMeansClustering, SpectralKNN
    from structlearn.cluster.methods.tsc import TSC
    from structlearn.data.features import load_features, load_labels
    from structlearn.data.sequences import load_feature_sequence
    from structlearn.models.gpt import GPT, GPTConfig
    from structlearn.optim.sgdw import SGDW
    from structlearn.optim.spectral_bound import SGDW2, AdamW2
    from structlearn.train.checkpoint import load_checkpoint

    cases: list[Case] = []
    X, y = blobs()
    ests: dict[str, Callable[..., Any]] = {
        "KMeans": lambda **k: KMeansClustering(**{"n_clusters": 3, "random_state": 0, **k}),
        "EnSC": lambda **k: EnSC(**{"n_clusters": 3, "random_state": 0, **k}),
        "SpectralKNN": lambda **k: SpectralKNN(**{"n_clusters": 3, "random_state": 0, **k}),
        "SSCOMP": lambda **k: SSCOMP(**{"n_clusters": 3, "random_state": 0, **k}),
        "TSC": lambda **k: TSC(**{"n_clusters": 3, "random_state": 0, **k}),
    }
    rng = np.random.default_rng(1)
    bad_X: dict[str, Any] = {
        "nan": np.where(rng.random(X.shape) < 0.05, np.nan, X),
        "inf": np.where(rng.random(X.shape) < 0.05, -np.inf, X),
        "1d": X[:, 0],
        "3d": X[:, :, None],
        "empty": np.zeros((0, 2)),
        "no features": np.zeros((60, 0)),
        "2 rows": X[:2],
        "constant": np.ones((60, 2)),
        "strings": np.array([["a", "b"]] * 60),
        "complex": X.astype(complex),
        "ragged list": [[1.0, 2.0], [3.0]],
        "None": None,
        "x1e30": X * 1e30,
        "x1e299": X * 1e299,
        "x1e-300": X * 1e-300,
        "x1e16": X * 1e16,
        "sparse": __import__("scipy.sparse", fromlist=["csr_matrix"]).csr_matrix(X),
        "torch nan": torch.tensor(np.where(rng.random(X.shape) < 0.05, np.nan, X)),
    }
    for en, make in ests.items():
        for xn, data in bad_X.items():
            cases.append(Case("api fit: bad X", f"{en} {xn}", lambda m=make, a=data: m().fit(a), kind="api"))
        for pn, kw in {
            "n_clusters 0": {"n_clusters": 0},
            "n_clusters -1": {"n_clusters": -1},
            "n_clusters 1.5": {"n_clusters": 1.5},
            "n_clusters '3'": {"n_clusters": "3"},
            "n_clusters None": {"n_clusters": None},
            "n_clusters > N": {"n_clusters": 100},
            "random_state 'x'": {"random_state": "x"},
            "random_state -1": {"random_state": -1},
        }.items():
            cases.append(
                Case("api fit: bad param", f"{en} {pn}", lambda m=make, k=kw: m(**k).fit(X), kind="api")
            )
        if en not in ("TSC",):
            cases.append(
                Case(
                    "api predict: bad X",
                    f"{en} predict 3 features",
                    lambda m=make: m().fit(X).predict(np.ones((4, 3))),
                    kind="api",
                )
            )
    # Scaled but in-range data: k-means must still be exact (silent-wrong check).
    for s in (1e12, 1e-12, 1e14):
        cases.append(
            Case(
                "api fit: odd but valid",
                f"KMeans x{s:g}",
                lambda s=s: KMeansClustering(3, random_state=0).fit(X * s).labels_,
                kind="api",
                expect="answer",
                check=lambda labels: evaluate(y, labels)["acc"] == 1.0,
            )
        )
    # GPT and optimizers
    gpt = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16))
    for tn, t in {
        "id = vocab": torch.tensor([[1, 16]]),
        "id -1": torch.tensor([[-1, 2]]),
        "float ids": torch.tensor([[1.0, 2.0]]),
        "bool ids": torch.tensor([[True, False]]),
        "1-D": torch.tensor([1, 2]),
        "3-D": torch.zeros(1, 2, 2, dtype=torch.long),
        "too long": torch.zeros(1, 9, dtype=torch.long),
        "empty T": torch.zeros(1, 0, dtype=torch.long),
        "numpy": np.zeros((1, 2), dtype=np.int64),
        "list": [[1, 2]],
    }.items():
        cases.append(Case("api GPT forward", tn, lambda t=t: gpt(t), kind="api"))
    for tn, (idx, tg) in {
        "targets shape": (torch.tensor([[1, 2]]), torch.tensor([[1]])),
        "targets >= vocab": (torch.tensor([[1, 2]]), torch.tensor([[1, 40]])),
        "targets float": (torch.tensor([[1, 2]]), torch.tensor([[1.0, 2.0]])),
    }.items():
        cases.append(Case("api GPT forward", tn, lambda i=idx, t=tg: gpt(i, targets=t), kind="api"))
    for k in ("uint8", "int8", "int16", "int32"):
        cases.append(
            Case(
                "api GPT forward",
                f"{k} ids accepted",
                lambda k=k: gpt(torch.tensor([[1, 2]], dtype=getattr(torch, k))),
                kind="api",
                expect="answer",
                check=lambda out: out[0].shape == (1, 2, 16),
            )
        )
    for cn, kw in {
        "vocab 0": {"vocab_size": 0},
        "block 0": {"block_size": 0},
        "n_head 3": {"n_head": 3},
        "norm nope": {"norm": "nope"},
        "dropout 1.5": {"dropout": 1.5},
        "n_embd -1": {"n_embd": -1},
        "vocab 2.5": {"vocab_size": 2.5},
    }.items():
        cases.append(Case("api GPTConfig", cn, lambda kw=kw: GPTConfig(**kw), kind="api"))
    p = [torch.nn.Parameter(torch.zeros(2, 2))]
    for on, ctor in {
        "AdamW2 betas (0.9,)": lambda: AdamW2(p, betas=(0.9,)),
        "AdamW2 betas 3": lambda: AdamW2(p, betas=(0.9, 0.9, 0.9)),
        "AdamW2 beta 1.0": lambda: AdamW2(p, betas=(1.0, 0.9)),
        "AdamW2 betas str": lambda: AdamW2(p, betas="ab"),
        "AdamW2 lr -1": lambda: AdamW2(p, lr=-1.0),
        "AdamW2 lr nan": lambda: AdamW2(p, lr=float("nan")),
        "AdamW2 eps -1": lambda: AdamW2(p, eps=-1.0),
        "AdamW2 wd -1": lambda: AdamW2(p, weight_decay=-1.0),
        "AdamW2 tau 0": lambda: AdamW2(p, tau=0.0),
        "AdamW2 power_iters 0": lambda: AdamW2(p, power_iters=0),
        "SGDW lr -1": lambda: SGDW(p, lr=-1.0),
        "SGDW momentum 1": lambda: SGDW(p, lr=0.1, momentum=1.0),
        "SGDW2 tau -1": lambda: SGDW2(p, lr=0.1, tau=-1.0),
        "SGDW2 lr nan": lambda: SGDW2(p, lr=float("nan")),
    }.items():
        cases.append(Case("api optimizer", on, ctor, kind="api"))
    # loaders
    for name in (
        "empty.npy",
        "rand.npy",
        "truncated.npy",
        "folder.npy",
        "missing.npy",
        "empty.npz",
        "rand.npz",
        "noX.npz",
        "objX.npz",
        "empty.csv",
        "ragged.csv",
        "words.csv",
        "latin1.csv",
        "bad.suffix",
        "strings.npy",
        "objects.npy",
        "complex.npy",
        "label_header.csv",
    ):
        cases.append(
            Case("api loaders", f"load_features {name}", lambda n=name: load_features(f[n]), kind="api")
        )
    for name in (
        "empty.npy",
        "rand.npy",
        "folder.npy",
        "missing.npy",
        "labels_2d.npy",
        "labels_float.npy",
        "labels_nan.npy",
        "labels_str.npy",
        "good.npy",
        "ragged.csv",
        "empty.npz",
        "bad.suffix",
    ):
        cases.append(Case("api loaders", f"load_labels {name}", lambda n=name: load_labels(f[n]), kind="api"))
    for name in (
        "empty.npy",
        "rand.npy",
        "folder.npy",
        "missing.npy",
        "empty.npz",
        "rand.npz",
        "nan.npy",
        "1d.npy",
        "strings.npy",
        "huge1e30.npy",
    ):
        cases.append(
            Case(
                "api loaders",
                f"load_feature_sequence {name}",
                lambda n=name: load_feature_sequence(f[n]),
                kind="api",
            )
        )
    for name in ("empty.npy", "rand.npy", "folder.npy", "missing.npy", "good.npy", "rand.npz"):
        cases.append(
            Case("api loaders", f"load_checkpoint {name}", lambda n=name: load_checkpoint(f[n]), kind="api")
        )
    return cases


def classify(case: Case) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = case.run()
    except (ValueError, TypeError, FileNotFoundError) as exc:
        if case.kind == "cli":
            return "traceback", f"{type(exc).__name__}: {str(exc)[:120]}"
        if case.expect == "answer":
            return "traceback", f"valid input refused: {type(exc).__name__}: {str(exc)[:120]}"
        msg = str(exc).strip()
        if "\n" in msg:
            return "multi-line", msg.splitlines()[0][:120]
        return "ok", f"{type(exc).__name__}: {msg[:120]}"
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return "traceback", f"{type(exc).__name__}: {str(exc)[:100]} ({Path(tb.filename).name}:{tb.lineno})"
    last = err.getvalue().strip().splitlines()[-1:] or [""]
    if case.kind == "cli":
        if result == 0:
            if case.expect in ("answer", "either") and case.check is not None:
                return ("ok", "answered correctly") if case.check() else ("silent wrong", "wrong answer")
            if case.expect == "either":
                return "ok", "accepted"
            return "wrong exit", "exit 0 (bad input accepted)"
        if result != 2:
            return "wrong exit", f"exit {result}: {last[0][:120]}"
        if case.expect == "answer":
            return "wrong exit", f"valid input refused: {last[0][:120]}"
        left = [p.name for p in case.outputs if p.exists()]
        if left:
            return "leftover", f"left {', '.join(left)}"
        return "ok", last[0][:120]
    if case.expect == "error":
        return "wrong exit", "no error raised (bad input accepted)"
    if case.check is not None and not case.check(result):
        return "silent wrong", "wrong answer"
    return "ok", "answered correctly"


def main_sweep() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bad_input"))
    ap.add_argument("--limit", type=int, default=None, help="run only the first N cases (smoke test)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bad_input_"))
    try:
        files_dir = tmp / "files"
        files_dir.mkdir()
        f = make_files(files_dir)
        work = tmp / "work"
        work.mkdir()
        cases = cli_cases(f, work) + api_cases(f)
        if args.limit is not None:
            cases = cases[: args.limit]
        rows: list[tuple[Case, str, str]] = []
        for i, case in enumerate(cases):
            status, detail = classify(case)
            rows.append((case, status, detail))
            print(f"[{i + 1}/{len(cases)}] {status:12s} {case.group} | {case.name} | {detail}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - t0
    counts = Counter(s for _, s, _ in rows)
    cats = ["ok", "traceback", "multi-line", "wrong exit", "leftover", "silent wrong"]
    lines = [
        "# Bad-input sweep",
        "",
        f"`python benchmarks/bad_input_sweep.py` — {len(rows)} cases, {seconds:.0f} s wall time, one thread, "
        f"torch {torch.__version__}, numpy {np.__version__}. Data: three 2-D Gaussian blobs (20 points each, "
        "seed 0). Categories are defined in the script's docstring.",
        "",
        "| category | cases |",
        "|---|---:|",
        *[f"| {c} | {counts.get(c, 0)} |" for c in cats],
        "",
        "| group | cases | ok | not ok |",
        "|---|---:|---:|---:|",
    ]
    groups = Counter(c.group for c, _, _ in rows)
    for g in groups:
        ok = sum(1 for c, s, _ in rows if c.group == g and s == "ok")
        lines.append(f"| {g} | {groups[g]} | {ok} | {groups[g] - ok} |")
    bad = [(c, s, d) for c, s, d in rows if s != "ok"]
    lines += ["", f"## Cases not ok ({len(bad)})", ""]
    lines += [f"- **{s}** — {c.group} / {c.name}: {d}" for c, s, d in bad] or ["none"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[:14]))
    return 0


if __name__ == "__main__":
    sys.exit(main_sweep())
