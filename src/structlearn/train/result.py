"""What ``Trainer.fit`` returns: :class:`TrainResult` (also written to ``result.json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from structlearn.train.metrics_log import clean_record


@dataclass
class TrainResult:
    """Outcome of ``Trainer.fit``. ``status``: completed | stopped (``stop_after``) | diverged |
    interrupted (SIGTERM/SIGINT with ``fit(handle_signals=True)``)."""

    status: str
    message: str
    step: int
    steps: int
    task: str
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    final_test_loss: float | None = None
    final_test_acc: float | None = None
    throughput: float = 0.0
    throughput_unit: str = "tokens/s"
    wall_s: float = 0.0
    train_s: float = 0.0
    peak_mb: float = 0.0
    cuda_peak_mb: float = 0.0
    optimizer_state_bytes: int = 0
    n_params: int = 0
    world_size: int = 1
    checkpoint: str | None = None
    checkpoint_step: int | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "stopped")

    @property
    def tokens_per_s(self) -> float | None:
        return self.throughput if self.throughput_unit == "tokens/s" else None

    @property
    def images_per_s(self) -> float | None:
        return self.throughput if self.throughput_unit == "images/s" else None

    def to_dict(self, history: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if history:
            out["history"] = [clean_record(r) for r in self.history]
        else:
            out.pop("history")
        return clean_record(out)


def latest_metrics(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest non-``None`` value of each metric over a run's records."""
    last: dict[str, Any] = {}
    for r in history:
        last.update({k: v for k, v in r.items() if v is not None})
    return last
