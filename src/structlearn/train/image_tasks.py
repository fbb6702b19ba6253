"""Image tasks: classification (``ImageTask``) and segmentation (``SegmentTask``); see ``train.tasks``
for the contract every task meets (``train.task_api.Task``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from structlearn.data.images import load_image_dataset
from structlearn.train.augment import default_shift, random_shift
from structlearn.train.config import TrainConfig
from structlearn.train.distributed import DistContext
from structlearn.train.task_api import AutocastFactory
from structlearn.utils.seed import torch_generator


class ImageTask:
    """Image (or 1-D signal) classification on ``digits``, ``fashion_mnist`` or ``mnist1d``.

    Images are scaled by the train split's mean and standard deviation; training batches are shuffled
    every epoch with the run's generator and shifted by ±``augment_shift`` pixels (``train.augment``).
    """

    unit = "images"
    metric = "test_acc"

    def __init__(self, config: TrainConfig, ctx: DistContext) -> None:
        self.config, self.ctx = config, ctx
        ds = load_image_dataset(config.dataset)
        self.name = ds.name
        x_train = torch.from_numpy(np.ascontiguousarray(ds.x_train, dtype=np.float32))
        y_train = torch.from_numpy(ds.y_train.astype(np.int64))
        if x_train.dim() == 3:  # (N, H, W) → (N, 1, H, W); MNIST-1D (N, 1, 40) → (N, 1, 1, 40)
            x_train = x_train[:, None]
        x_test = torch.from_numpy(np.ascontiguousarray(ds.x_test, dtype=np.float32))
        x_test = x_test[:, None] if x_test.dim() == 3 else x_test
        g_data = torch_generator(config.data_seed)
        if config.train_subset is not None:
            if config.train_subset > len(x_train):
                raise ValueError(
                    f"train_subset {config.train_subset} exceeds the {len(x_train)} training images "
                    f"of {ds.name}"
                )
            keep = torch.randperm(len(x_train), generator=g_data)[: config.train_subset]
            x_train, y_train = x_train[keep], y_train[keep]
        if config.label_noise > 0:
            flip = torch.rand(len(y_train), generator=g_data) < config.label_noise
            noise = torch.randint(0, ds.n_classes, (len(y_train),), generator=g_data)
            y_train = torch.where(flip, noise, y_train)
        self.n_classes = ds.n_classes
        self.x_train, self.y_train = x_train, y_train
        self.x_test = x_test
        self.y_test = torch.from_numpy(ds.y_test.astype(np.int64))
        self.mean = float(x_train.mean())
        self.std = float(x_train.std()) or 1.0
        self.batch_size = config.batch_size * config.grad_accum  # all micro-batches of one step
        self.global_batch = self.batch_size * ctx.world_size
        if self.global_batch > len(x_train):
            raise ValueError(
                f"batch size {self.global_batch} ({config.batch_size} × {config.grad_accum} micro-batches × "
                f"{ctx.world_size} processes) exceeds "
                f"the {len(x_train)} training images of {ds.name}"
            )
        h, w = x_train.shape[-2:]
        self.shift = default_shift((h, w)) if config.augment_shift is None else config.augment_shift
        # Shifts beyond half the image move most of it out of frame (issue 11.9: ±40 px on 28 px
        # images trained at chance); 1-D signals (H = 1) are shifted along W only.
        extent = w if h == 1 else min(h, w)
        if self.shift > extent // 2:
            raise ValueError(
                f"augment_shift {self.shift} is too large for {h}×{w} images of {ds.name} "
                f"(at most {extent // 2}, half the image)"
            )
        self._start_stream()

    def _start_stream(self) -> None:
        """The batch stream before its first batch: shuffled per epoch with the run's generator."""
        self.items_per_step = self.global_batch
        self.generator = torch_generator(self.config.seed)
        self.perm = torch.zeros(0, dtype=torch.int64)
        self.cursor = 0
        self.epoch = 0

    @property
    def model_info(self) -> dict[str, Any]:
        c, h, w = self.x_train.shape[1:]
        return {"image_size": (int(h), int(w)), "in_channels": int(c), "n_classes": self.n_classes}

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "n_train": len(self.x_train),
            "n_test": len(self.x_test),
            "image_shape": list(self.x_train.shape[1:]),
        }

    @property
    def vocabulary(self) -> None:
        return None

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cursor + self.global_batch > len(self.perm):  # new epoch; the incomplete tail is dropped
            self.perm = torch.randperm(len(self.x_train), generator=self.generator)
            self.cursor = 0
            self.epoch += 1
        idx = self.perm[self.cursor : self.cursor + self.global_batch]
        self.cursor += self.global_batch
        x = random_shift(self.x_train[idx], self.shift, self.generator)  # offsets drawn for the global batch
        b, r = self.batch_size, self.ctx.rank
        return self._normalise(x[r * b : (r + 1) * b]), self.y_train[idx[r * b : (r + 1) * b]]

    def probe_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.config.resolved_eval_batch_size
        return self._normalise(self.x_test[:n]), self.y_test[:n]

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device, autocast: AutocastFactory) -> dict[str, float]:
        bs = self.config.resolved_eval_batch_size
        n = len(self.x_test)
        sums = torch.zeros(2, dtype=torch.float64, device=device)  # (loss sum, correct)
        for i in range(self.ctx.rank, (n + bs - 1) // bs, self.ctx.world_size):
            x = self._normalise(self.x_test[i * bs : (i + 1) * bs]).to(device)
            y = self.y_test[i * bs : (i + 1) * bs].to(device)
            with autocast():
                logits, loss = model(x, y)
            sums[0] += loss.double() * len(y)
            sums[1] += (logits.argmax(-1) == y).sum()
        self.ctx.all_reduce(sums)
        loss_sum, correct = sums.tolist()
        return {"test_loss": loss_sum / n, "test_acc": correct / n}

    def log_fields(self) -> dict[str, Any]:
        return {"epoch": round(self.epoch_progress(), 4)}

    def describe(self) -> str:
        fp = self.fingerprint
        return (
            f"data: {fp['dataset']}: {fp['n_train']} train / {fp['n_test']} test, shape {fp['image_shape']}"
        )

    def epoch_progress(self) -> float:
        """Epochs completed so far, fractional."""
        if len(self.perm) == 0:
            return 0.0
        return self.epoch - 1 + self.cursor / len(self.x_train)

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "perm": self.perm,
            "cursor": self.cursor,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm = state["perm"].to(torch.int64)
        self.cursor = int(state["cursor"])
        self.epoch = int(state["epoch"])


MOSAIC_OPTIONS = frozenset({"n_val", "size", "scale", "max_glyphs", "ignore_edges", "digits", "ink", "align"})


class SegmentTask(ImageTask):
    """Semantic segmentation (DEPICT, arXiv 2411.03033) on the procedural ``digit_mosaic`` set or a user
    folder (``images/`` + PNG class-id ``masks/``; ``data.segmentation.load_segmentation_folder``).

    ``train_subset`` sets the number of generated training canvases (default 2,000; val: 300);
    ``config.extras["digit_mosaic"]`` passes further ``make_digit_mosaic`` options (``MOSAIC_OPTIONS``).
    Batches: the train split shuffled every epoch (no shift augmentation: masks would need it too);
    evaluation: the whole val split, dataset-level mIoU and pixel accuracy (mmseg conventions,
    ``diagnostics.segmentation``), and a PNG of image / ground truth / prediction in the output folder.
    """

    unit = "images"
    metric = "test_mIoU"

    def __init__(self, config: TrainConfig, ctx: DistContext) -> None:
        from structlearn.data.segmentation import load_segmentation_folder, make_digit_mosaic

        self.config, self.ctx = config, ctx
        if config.dataset == "digit_mosaic":
            # Generator options (size, scale, max_glyphs, digits, ink, align, ...) from the Python API:
            # TrainConfig.extras["digit_mosaic"]; checkpointed with the config, so a resume rebuilds the set.
            opts = dict(config.extras.get("digit_mosaic", {}))
            bad = sorted(set(opts) - MOSAIC_OPTIONS)
            if bad:
                raise ValueError(
                    f"unknown digit_mosaic option {bad[0]!r}; "
                    f"expected one of {', '.join(sorted(MOSAIC_OPTIONS))}"
                )
            if "digits" in opts and opts["digits"] is not None:
                opts["digits"] = tuple(opts["digits"])  # a JSON round trip (checkpoint) gives a list
            ds = make_digit_mosaic(n_train=config.train_subset or 2000, seed=config.data_seed, **opts)
        else:  # a user folder: images/ + masks/, 20 % held out with the data seed
            root = Path(config.dataset)
            ds = load_segmentation_folder(
                root / "images", root / "masks", seed=config.data_seed, patch_size=config.resolved_patch_size
            )
        self.name, self.n_classes = ds.name, ds.n_classes
        self.x_train, self.y_train = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
        self.x_test, self.y_test = torch.from_numpy(ds.x_val), torch.from_numpy(ds.y_val)
        self.mean = float(self.x_train.mean())
        self.std = float(self.x_train.std()) or 1.0
        self.batch_size = config.batch_size * config.grad_accum  # all micro-batches of one step
        self.global_batch = self.batch_size * ctx.world_size
        if self.global_batch > len(self.x_train):
            raise ValueError(
                f"batch size {self.global_batch} exceeds the {len(self.x_train)} training images"
            )
        self.shift = 0  # ImageTask.next_batch then draws no offsets: the same stream, unshifted
        self._start_stream()

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device, autocast: AutocastFactory) -> dict[str, float]:
        from structlearn.diagnostics.segmentation import SegMetrics, plot_segmentation

        bs = self.config.resolved_eval_batch_size
        n = len(self.x_test)
        C = self.n_classes
        hist = torch.zeros(4, C, dtype=torch.float64, device=device)  # intersect, pred, label areas; loss
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        preds = []
        for i in range(self.ctx.rank, (n + bs - 1) // bs, self.ctx.world_size):
            x = self._normalise(self.x_test[i * bs : (i + 1) * bs]).to(device)
            y = self.y_test[i * bs : (i + 1) * bs].to(device)
            with autocast():
                logits, loss = model(x, y)
            loss_sum += loss.double() * len(y)
            p, keep = logits.argmax(1), y != 255
            pk, yk = p[keep], y[keep]
            hist[0] += torch.bincount(yk[pk == yk], minlength=C).double()
            hist[1] += torch.bincount(pk, minlength=C).double()
            hist[2] += torch.bincount(yk, minlength=C).double()
            if i == 0:
                preds.append(p[:4].cpu())
        self.ctx.all_reduce(hist)
        self.ctx.all_reduce(loss_sum)
        m = SegMetrics(C)
        m.intersect, m.pred_area, m.label_area = (hist[k].cpu().numpy().astype(np.int64) for k in range(3))
        m.union = m.pred_area + m.label_area - m.intersect
        r = m.compute()
        if preds and self.ctx.is_main and self.config.out_dir is not None:
            from pathlib import Path

            k = len(preds[0])
            plot_segmentation(
                self.x_test[:k].numpy(),
                self.y_test[:k].numpy(),
                preds[0].numpy(),
                C,
                Path(self.config.out_dir) / "segmentation.png",
            )
        return {"test_loss": float(loss_sum) / n, "test_acc": float(r["aAcc"]), "test_mIoU": float(r["mIoU"])}
