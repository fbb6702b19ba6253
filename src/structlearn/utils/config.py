"""Round-trip of typed dataclass configs through plain dicts (checkpoints, config.json)."""

from __future__ import annotations

import dataclasses
from typing import Any, Self


class DictConfig:
    """Mixin for ``@dataclass`` configs: ``to_dict``, strict ``from_dict`` (unknown keys: ValueError)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__} must be built from a mapping, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
        return cls(**d)
