from dataclasses import dataclass

import pytest

from structlearn.models import GPTConfig, ViTConfig
from structlearn.utils.config import DictConfig


@dataclass(frozen=True)
class _Cfg(DictConfig):
    a: int = 1
    b: tuple[int, ...] = (2, 3)


def test_round_trip_and_strictness() -> None:
    c = _Cfg(a=5)
    assert c.to_dict() == {"a": 5, "b": (2, 3)}
    assert _Cfg.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown _Cfg fields: z"):
        _Cfg.from_dict({"a": 1, "z": 0})
    with pytest.raises(ValueError, match="mapping"):
        _Cfg.from_dict([("a", 1)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cfg", [GPTConfig(vocab_size=11, n_layer=1, n_embd=8, n_head=2), ViTConfig(n_embd=8, n_head=2)]
)
def test_model_configs_round_trip(cfg) -> None:
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
