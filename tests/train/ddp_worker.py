"""Run by test_ddp.py under ``torchrun --nproc_per_node=2``: ``structlearn train`` through the CLI, plus an
extension hook that saves each rank's final weights (rank{r}.safetensors) so the test can compare them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from structlearn.cli import main
from structlearn.train.extensions import TrainExtension, register_extension


class SaveRankWeights:
    def __init__(self, out: Path) -> None:
        self.out = out

    def on_end(self, trainer: Any, result: Any) -> None:
        state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}  # tied: copies
        save_file(state, str(self.out / f"rank{trainer.ctx.rank}.safetensors"))


class DumpExtension(TrainExtension):
    name = "dump"

    def hooks(self, config: Any) -> list[Any]:
        return [SaveRankWeights(Path(config.out_dir))]


if __name__ == "__main__":
    register_extension(DumpExtension())
    sys.exit(main(["train", *sys.argv[1:]]))
