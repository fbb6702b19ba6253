"""Atomic, pickle-free checkpoints.

A checkpoint is one ``.safetensors`` file. Every tensor of an arbitrarily nested state (model and
optimizer ``state_dict``s, RNG states, ...) is stored as a safetensors tensor; everything else
(numbers, strings, lists, the nesting itself) is stored as JSON in the file's metadata. Loading
therefore never unpickles anything. A human-readable JSON copy of the non-tensor part is written
beside it (``<name>.json``) for inspection; the loader reads only the ``.safetensors`` file.

Files are written to a temporary name in the same folder and renamed, so a crash mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from structlearn.utils.io import atomic_path, write_json

FORMAT = "structlearn-checkpoint-v1"
_TENSOR = "__tensor__"
_TUPLE = "__tuple__"
_INTKEYS = "__intkeys__"


def _flatten(obj: Any, tensors: dict[str, torch.Tensor], seen: dict[tuple, str], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        # Tied weights share storage; safetensors refuses aliases, so store each storage view once.
        key_id = (
            t.untyped_storage().data_ptr(),
            t.storage_offset(),
            tuple(t.shape),
            tuple(t.stride()),
            t.dtype,
        )
        if t.numel() > 0 and key_id in seen:
            return {_TENSOR: seen[key_id]}
        name = f"t{len(tensors)}"
        tensors[name] = t.to("cpu").contiguous().clone()
        if t.numel() > 0:
            seen[key_id] = name
        return {_TENSOR: name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _flatten(v, tensors, seen, f"{path}.{k}") for k, v in obj.items()}
        if all(isinstance(k, int) for k in obj):  # optimizer state is keyed by parameter index
            return {_INTKEYS: [[k, _flatten(v, tensors, seen, f"{path}.{k}")] for k, v in obj.items()]}
        raise TypeError(f"checkpoint dict at {path or '<root>'} mixes key types")
    if isinstance(obj, tuple):
        return {_TUPLE: [_flatten(v, tensors, seen, f"{path}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, seen, f"{path}[{i}]") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store object of type {type(obj).__name__} at {path or '<root>'} in a checkpoint")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR}:
            return tensors[obj[_TENSOR]]
        if set(obj) == {_TUPLE}:
            return tuple(_unflatten(v, tensors) for v in obj[_TUPLE])
        if set(obj) == {_INTKEYS}:
            return {int(k): _unflatten(v, tensors) for k, v in obj[_INTKEYS]}
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (a nested dict of tensors and JSON values) atomically to ``path``."""
    dest = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, tensors, {}, "")
    meta = {"format": FORMAT, "state": json.dumps(skeleton, allow_nan=True)}
    with atomic_path(dest) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=meta)
        except SafetensorError as exc:  # e.g. a full disk: safetensors reports "(os error 28)"
            raise _as_os_error(exc) from None
    readable = {k: v for k, v in skeleton.items() if k in ("config", "step", "meta", "train_config")}
    write_json(dest.with_suffix(".json"), _strip_tensors(readable))
    return dest


class LoadedCheckpoint(dict[str, Any]):
    """A checkpoint's state as :func:`load_checkpoint` read it: a plain dict that remembers the path it
    was read from (``source``, as given), so a reader handed the loaded state can still name the file
    in its messages instead of reading it a second time."""

    source: str | os.PathLike[str]


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> LoadedCheckpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; ``ValueError`` if missing or corrupt."""
    src = Path(path)
    if not src.is_file():
        raise ValueError(f"checkpoint {src} does not exist")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(src), framework="pt", device=str(map_location)) as fh:
            meta = fh.metadata() or {}
            for key in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                tensors[key] = fh.get_tensor(key)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"checkpoint {src} is corrupt or not a safetensors file ({exc})") from None
    if meta.get("format") != FORMAT or "state" not in meta:
        raise ValueError(f"checkpoint {src} was not written by structlearn (format {meta.get('format')!r})")
    try:
        skeleton = json.loads(meta["state"])
        state = _unflatten(skeleton, tensors)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"checkpoint {src} has a corrupt state header ({exc})") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {src} has a corrupt state header (not a mapping)")
    check_step(state, f"checkpoint {src}")
    loaded = LoadedCheckpoint(state)
    loaded.source = path
    return loaded


def check_step(state: dict[str, Any], where: str = "checkpoint") -> None:
    """The ``step`` entry, when present, is a non-negative integer (a negative step would resume and
    write duplicated step numbers; a float or string would fail later in a bare ``int()``)."""
    if "step" not in state:
        return
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValueError(f"{where} has a non-integer step {step!r}")
    if step < 0:
        raise ValueError(f"{where} has a negative step {step}")


def check_state_shapes(expected: dict[str, Any], saved: Any, where: str = "checkpoint") -> None:
    """Compare a saved model ``state_dict`` with the one a module expects; a mismatch names the tensor
    and both shapes in one line (torch's own message starts with a bare "Error(s) in loading")."""
    if not isinstance(saved, dict):
        raise ValueError(f"{where}: the model state is not a mapping")
    missing = [k for k in expected if k not in saved]
    extra = [k for k in saved if k not in expected]
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + (
            [f"unexpected {', '.join(extra[:3])}"] if extra else []
        )
        raise ValueError(f"{where} does not match the model: {'; '.join(parts)}")
    for k, t in expected.items():
        v = saved[k]
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"{where}: model tensor {k} is not a tensor")
        if tuple(v.shape) != tuple(t.shape):
            raise ValueError(
                f"{where}: model tensor {k} has shape {tuple(v.shape)} there "
                f"but {tuple(t.shape)} in this model"
            )


def _as_os_error(exc: Exception) -> OSError:
    """safetensors' I/O failure as an ``OSError`` (``atomic_path`` then names the destination)."""
    found = re.search(r"os error (\d+)", str(exc))
    code = int(found.group(1)) if found else errno.EIO
    return OSError(code, os.strerror(code))


def _strip_tensors(obj: Any) -> Any:
    """The human-readable form of a skeleton: tensors as ``"<tensor>"`` and no internal markers (tuples
    as lists, integer-keyed dicts with string keys, as plain JSON would show them)."""
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return "<tensor>"
        if set(obj) == {_TUPLE}:
            return [_strip_tensors(v) for v in obj[_TUPLE]]
        if set(obj) == {_INTKEYS}:
            return {str(k): _strip_tensors(v) for k, v in obj[_INTKEYS]}
        return {k: _strip_tensors(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_strip_tensors(v) for v in obj]
    if isinstance(obj, float) and obj != obj:  # NaN
        return "nan"
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return str(obj)
    return obj
