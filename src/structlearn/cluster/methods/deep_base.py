"""The scaffold shared by the deep clustering estimators: SENet (arXiv 2110.04318), PRO-DSC (arXiv
2503.17288), NeuNcut (arXiv 2503.09260) and TR2C (arXiv 2506.21249).

Each of them trains a small network with a seeded initialisation and its own generator, runs a
fixed number of optimiser steps, then labels the training set (and, where it has ``predict``, new
points) from forward passes over row chunks. What they share lives here, once:

- :class:`DeepClusterEstimator`: the parameters declared once by a frozen config dataclass
  (``_config_class``, whose ``__post_init__`` validates every one, ``device`` included; the
  constructor is generated from its fields, so a parameter is written in one place and scikit-learn's
  ``get_params``/``set_params``/``clone`` see an ordinary keyword signature); validated new data in
  chunks, sent to the device of the fitted network;
- :func:`seeded_module`: a network built from its own seed, leaving the global torch stream alone;
- :func:`forward_chunks`: no-grad forward passes over ``INFERENCE_CHUNK`` rows at a time;
- :func:`epoch_batches` and :func:`run_steps`: the mini-batch order and the optimisation loop
  (zero_grad → backward → [clip] → step → [scheduler], per-step loss terms kept on the device and
  read back once, an optional progress bar).

The block-wise top-k of a dense product (used by SENet, PRO-DSC and TR2C) is
:func:`structlearn.cluster.graph.affinity.topk_blockwise`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from structlearn.cluster.methods.base import ClusterEstimator
from structlearn.utils.denormal import flush_denormals
from structlearn.utils.malloc import trim_heap

# Rows per no-grad forward pass at inference (labelling the training set, transform, predict): the
# activations of one chunk, O(chunk · width), bound the memory. A row's output does not depend on the
# chunk it is computed in (checked bit for bit on the CPU for chunks of 64 to 20,000 rows; not checked
# on a GPU, where the matmul kernel may depend on the number of rows).
INFERENCE_CHUNK = 16384

StepFn = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def seeded_module(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` under ``torch.manual_seed(seed)`` inside a forked RNG: the initialisation is fixed
    by ``seed`` and the caller's global torch stream is neither consumed nor changed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def train_subset(n: int, max_train_samples: int | None, seed: int) -> np.ndarray:
    """Sorted row indices a network trains on: all ``n`` rows, or a ``seed``-drawn random subset of
    ``max_train_samples`` of them when N is larger (the rest are labelled by the trained network)."""
    if max_train_samples is None or n <= max_train_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:max_train_samples])


def row_chunks(X: torch.Tensor) -> Iterator[torch.Tensor]:
    """Consecutive views of ``INFERENCE_CHUNK`` rows of X (read at call time, so tests can lower it)."""
    for s in range(0, X.shape[0], INFERENCE_CHUNK):
        yield X[s : s + INFERENCE_CHUNK]


@torch.no_grad()
def forward_chunks(fn: Callable[[torch.Tensor], Any], chunks: Iterable[torch.Tensor]) -> Any:
    """``fn`` applied to each chunk without gradient, outputs concatenated along rows (a tuple output
    gives a tuple of concatenations)."""
    outs = [fn(xb) for xb in chunks]
    if outs and isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))
    return torch.cat(outs)


def epoch_batches(
    n: int, batch_size: int, n_epochs: int, gen: torch.Generator, device: torch.device | str | None = None
) -> Iterator[torch.Tensor]:
    """Index batches of ``batch_size`` rows (drop_last), reshuffled by ``gen`` every epoch; one full
    batch in order when ``batch_size == n`` (no shuffle, so nothing of ``gen`` is consumed). The epoch's
    permutation is drawn on ``gen``'s device and moved to ``device`` once per epoch: a blocking
    host-to-device copy every step would make the host wait for the accelerator each step."""
    for _ in range(n_epochs):
        perm = torch.arange(n) if batch_size == n else torch.randperm(n, generator=gen)
        if device is not None:
            perm = perm.to(device)
        for b in range(n // batch_size):
            yield perm[b * batch_size : (b + 1) * batch_size]


TRIM_EVERY = 50  # steps between returns of the heap's free pages to the system


def run_steps(
    n_steps: int,
    step_fn: StepFn,
    opt: torch.optim.Optimizer,
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    clip: tuple[Iterable[torch.Tensor], float] | None = None,
    after_step: Callable[[int], None] | None = None,
    desc: str = "train",
    verbose: bool = False,
) -> list[torch.Tensor]:
    """The optimisation loop of every deep estimator; returns the per-step detached loss terms.

    ``step_fn(step)`` draws its batch and returns (loss, terms) with ``terms[0]`` the loss to show.
    After the update, ``after_step(steps_done)`` runs (head copies, checkpoint selection). ``clip`` =
    (parameters, max_norm) clips the gradient norm before the step. The terms stay on the device: the
    loop syncs with the host only to show the loss when ``verbose``.
    """
    clip_params = None if clip is None else list(clip[0])  # a generator would be spent after one step
    history: list[torch.Tensor] = []
    bar = tqdm(total=n_steps, desc=desc, disable=not verbose, leave=False)
    log_every = max(1, n_steps // 50)
    with flush_denormals():  # subnormal memberships/gradients slowed CPU steps 11× (utils.denormal)
        for step in range(n_steps):
            loss, terms = step_fn(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(clip_params, clip[1])
            opt.step()
            if scheduler is not None:
                scheduler.step()
            history.append(terms)
            if step % TRIM_EVERY == TRIM_EVERY - 1:
                trim_heap()  # else glibc's heap keeps freed pages: ~5 MB per SENet step (utils.malloc)
            bar.update(1)
            if verbose and (step + 1) % log_every == 0:
                bar.set_postfix(loss=f"{float(terms[0]):.4g}")
            if after_step is not None:
                after_step(step + 1)
    bar.close()
    return history


class DeepClusterEstimator(ClusterEstimator):
    """Base of the deep clustering estimators (module docstring).

    Its parameters are declared by a ``_config_class`` (the constructor generated from it by
    :class:`~structlearn.cluster.methods.base.ClusterEstimator`); ``fit`` calls
    ``cfg = self._validate_params()`` once and uses only the typed ``cfg`` afterwards.
    """

    device: Any
    net_: nn.Module  # the trained network of PRO-DSC and NeuNcut (SENet, TR2C name theirs differently)

    def _inference_device(self) -> torch.device:
        """Where the fitted network ``net_`` lives: new data goes there (not to a ``device`` set after
        fit). Called after the input is validated, so an unfitted estimator raises NotFittedError."""
        return next(self.net_.parameters()).device

    def _new_data_chunks(self, X: Any) -> Iterator[torch.Tensor]:
        """Validated float32 row chunks of new data on the network's device.

        A large 2-D array is validated chunk by chunk, so no N×D temporary (dtype copy, finiteness
        mask) is allocated: memory stays O(chunk) apart from the output.
        """
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[0] > INFERENCE_CHUNK:
            for s in range(0, X.shape[0], INFERENCE_CHUNK):
                chunk = self._validate_X(X[s : s + INFERENCE_CHUNK], reset=False)
                yield torch.from_numpy(chunk).to(self._inference_device())
            return
        Xt = torch.from_numpy(self._validate_X(X, reset=False))
        yield from row_chunks(Xt.to(self._inference_device()))
