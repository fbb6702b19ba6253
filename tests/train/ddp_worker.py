"""Run by test_ddp.py under ``torchrun --nproc_per_node=2``: ``structlearn train`` through the CLI, plus an
extension hook that saves each rank's final weights (rank{r}.safetensors) so the test can compare them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for tests.*

from safetensors.torch import save_file

import structlearn.train.engine as engine
from structlearn.cli import main
from structlearn.train.extensions import TrainExtension, register_extension
from tests.train.standins import STANDINS


class SaveRankWeights:
    def __init__(self, out: Path) -> None:
        self.out = out

    def on_end(self, trainer: Any, result: Any) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()}
        save_file(state, str(self.out / f"rank{trainer.ctx.rank}.safetensors"))


class DumpExtension(TrainExtension):
    name = "dump"

    def hooks(self, config: Any) -> list[Any]:
        return [SaveRankWeights(Path(config.out_dir))]


if __name__ == "__main__":
    engine.Components = lambda: STANDINS  # type: ignore[assignment,misc]
    register_extension(DumpExtension())
    sys.exit(main(["train", *sys.argv[1:]]))
