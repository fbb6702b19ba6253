"""Offline text corpora, character/byte tokenisation and a vectorised language-model batch sampler.

Corpus (``corpus=``): ``"stdlib"`` (default) = the Python standard library's ``.py`` sources, located at
run time with ``sysconfig`` (``test/``, ``idlelib/``, ``lib2to3/`` and ``site-packages/`` folders
excluded; always present, ≈ 11 MB for CPython 3.11); ``"pydoc"`` = the Python documentation reST sources
(Debian package ``python3.11-doc``; folder ``$STRUCTLEARN_PYDOC_DIR`` or
``/usr/share/doc/python3.11/html/_sources``); or a path to a file or a folder (every regular,
non-hidden file below it, in sorted order). Files are concatenated in that deterministic order, cut at
``max_bytes``, and described by a fingerprint (file count, byte count, SHA-256 of the concatenation)
because the stdlib differs across patch releases.

Split by position: the first 90 % of the token stream trains, the last 10 % validates. Tokenisers:
``char`` (vocabulary = the sorted distinct characters of the train split, id 0 reserved for characters
unseen there) and ``byte`` (256 ids, no vocabulary). Nothing here downloads.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from structlearn.utils.validation import check_choice, check_float, check_int

STDLIB_EXCLUDE = frozenset({"test", "idlelib", "lib2to3", "site-packages"})
PYDOC_DEFAULT = Path("/usr/share/doc/python3.11/html/_sources")
PYDOC_INSTALL = (
    "Install it with `sudo apt-get install python3.11-doc`, or set STRUCTLEARN_PYDOC_DIR to a folder "
    "of .rst.txt files."
)
TOKENIZERS = ("char", "byte")
UNKNOWN_CHAR = "\ufffd"


@dataclass(frozen=True)
class CorpusFingerprint:
    """What a run was trained on: recorded in every log and checkpoint."""

    source: str
    files: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "files": self.files, "bytes": self.bytes, "sha256": self.sha256}


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files() -> list[Path]:
    """The standard library's ``.py`` files, sorted, without tests, IDLE, lib2to3 and site-packages."""
    root = stdlib_root()
    files = []
    for p in root.rglob("*.py"):
        rel = p.relative_to(root).parts
        if STDLIB_EXCLUDE.isdisjoint(rel[:-1]) and p.is_file():
            files.append(p)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def pydoc_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Python-docs folder: argument → ``$STRUCTLEARN_PYDOC_DIR`` → the Debian default."""
    if root is not None:
        return Path(root)
    env = os.environ.get("STRUCTLEARN_PYDOC_DIR")
    return Path(env) if env else PYDOC_DEFAULT


def pydoc_files(root: str | os.PathLike[str] | None = None) -> list[Path]:
    base = pydoc_root(root)
    files = (
        sorted(base.rglob("*.rst.txt"), key=lambda p: p.relative_to(base).as_posix()) if base.is_dir() else []
    )
    if not files:
        raise FileNotFoundError(
            f"Python documentation sources not found in {base} (no *.rst.txt). {PYDOC_INSTALL}"
        )
    return files


def _path_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.exists():
        raise FileNotFoundError(f"corpus {path} does not exist")
    if not path.is_dir():
        raise ValueError(f"corpus {path} is neither a file nor a folder")
    files = [
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(path).as_posix())


def corpus_files(corpus: str | os.PathLike[str] | None = "stdlib") -> tuple[str, list[Path]]:
    """(source description, ordered file list) for a corpus name or path."""
    if corpus is None or str(corpus) == "stdlib":
        return f"stdlib:{stdlib_root()}", stdlib_files()
    if str(corpus) == "pydoc":
        base = pydoc_root()
        return f"pydoc:{base}", pydoc_files(base)
    path = Path(corpus).expanduser()
    return str(path), _path_files(path)


def _read_files(files: list[Path], max_bytes: int | None) -> tuple[bytes, int]:
    chunks: list[bytes] = []
    total = 0
    used = 0
    for p in files:
        if max_bytes is not None and total >= max_bytes:
            break
        data = p.read_bytes()
        if max_bytes is not None and total + len(data) > max_bytes:
            data = data[: max_bytes - total]
        chunks.append(data)
        total += len(data)
        used += 1
    return b"".join(chunks), used


def read_corpus(
    corpus: str | os.PathLike[str] | None = "stdlib", max_bytes: int | None = None
) -> tuple[bytes, CorpusFingerprint]:
    """Concatenated corpus bytes (cut at ``max_bytes``) and their fingerprint."""
    if max_bytes is not None:
        check_int("max_bytes", max_bytes, minimum=1)
    key = "stdlib" if corpus is None else str(corpus)
    if key in ("stdlib", "pydoc"):
        # The built-in corpora do not change during a process: benchmarks read them once.
        return _read_named_corpus(key, os.environ.get("STRUCTLEARN_PYDOC_DIR"), max_bytes)
    return _read_corpus(key, max_bytes)


@functools.lru_cache(maxsize=4)
def _read_named_corpus(
    key: str, _pydoc_env: str | None, max_bytes: int | None
) -> tuple[bytes, CorpusFingerprint]:
    return _read_corpus(key, max_bytes)


def _read_corpus(key: str, max_bytes: int | None) -> tuple[bytes, CorpusFingerprint]:
    source, files = corpus_files(key)
    if not files:
        raise ValueError(f"corpus {source} is empty (no files)")
    data, used = _read_files(files, max_bytes)
    if not data:
        raise ValueError(f"corpus {source} is empty (0 bytes in {len(files)} files)")
    return data, CorpusFingerprint(source, used, len(data), hashlib.sha256(data).hexdigest())


class CharTokenizer:
    """Characters → ids 1..V in code-point order; id 0 stands for any character not in the vocabulary."""

    kind = "char"
    unk_id = 0

    def __init__(self, chars: str) -> None:
        cps = _codepoints(chars)
        # bincount is O(n) where np.unique would sort millions of characters.
        codes = np.flatnonzero(np.bincount(cps)) if len(cps) else np.zeros(0, dtype=np.int64)
        self._codes = codes  # sorted code points; id = position + 1
        self.chars = "".join(map(chr, codes.tolist()))

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self._codes) + 1

    def encode(self, text: str) -> np.ndarray:
        """Vectorised lookup (searchsorted over the sorted code points); unseen characters → 0."""
        cps = _codepoints(text)
        if len(self._codes) == 0:
            return np.zeros(len(cps), dtype=np.int64)
        pos = np.searchsorted(self._codes, cps).clip(max=len(self._codes) - 1)
        return np.where(self._codes[pos] == cps, pos + 1, 0).astype(np.int64)

    def decode(self, ids: Any) -> str:
        table = np.array([UNKNOWN_CHAR, *self.chars], dtype=object)
        return "".join(table[np.asarray(ids, dtype=np.int64)].tolist())

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "codepoints": self._codes.astype(np.int64).tolist()}


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255."""

    kind = "byte"
    vocab_size = 256

    def encode(self, data: bytes | str) -> np.ndarray:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        return np.frombuffer(raw, dtype=np.uint8).astype(np.int64)

    def decode(self, ids: Any) -> str:
        return bytes(np.asarray(ids, dtype=np.uint8).tobytes()).decode("utf-8", errors="replace")

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


Tokenizer = CharTokenizer | ByteTokenizer


def tokenizer_from_state(state: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer saved with ``state_dict`` (e.g. from a checkpoint)."""
    kind = state.get("kind")
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char" and isinstance(state.get("codepoints"), list):
        return CharTokenizer("".join(map(chr, state["codepoints"])))
    raise ValueError(f"unknown tokenizer state (kind {kind!r})")


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", errors="replace"), dtype=np.uint32).astype(np.int64)


@dataclass(frozen=True)
class TextData:
    """Tokenised train/val streams (1-D int tensors), the tokenizer and the corpus fingerprint."""

    train: torch.Tensor
    val: torch.Tensor
    tokenizer: Tokenizer
    fingerprint: CorpusFingerprint

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def check_context(self, block_size: int) -> None:
        """A context needs ``block_size + 1`` consecutive tokens in each split."""
        check_int("block_size", block_size, minimum=1)
        for name, split in (("train", self.train), ("val", self.val)):
            if block_size >= len(split):
                raise ValueError(
                    f"context {block_size} is >= the {name} split length ({len(split)} tokens); "
                    f"use a smaller --block-size or a larger corpus"
                )


def load_text(
    corpus: str | os.PathLike[str] | None = "stdlib",
    tokenizer: str = "char",
    max_bytes: int | None = None,
    val_fraction: float = 0.1,
    vocabulary: dict[str, Any] | None = None,
) -> TextData:
    """Read, tokenise and split a corpus by position (first ``1 − val_fraction`` trains).

    ``vocabulary`` (a tokenizer ``state_dict``, e.g. from a checkpoint) reuses a saved vocabulary
    instead of building one from the train split.
    """
    check_choice("tokenizer", tokenizer, TOKENIZERS)
    check_float("val_fraction", val_fraction, positive=True, maximum=0.5)
    raw, fingerprint = read_corpus(corpus, max_bytes)
    if tokenizer == "byte":
        tok: Tokenizer = ByteTokenizer()
        ids = tok.encode(raw)
    else:
        text = raw.decode("utf-8", errors="replace")
        if vocabulary is not None:
            tok = tokenizer_from_state(vocabulary)
            if tok.kind != "char":
                raise ValueError(f"vocabulary is for the {tok.kind!r} tokenizer, not 'char'")
        else:
            tok = CharTokenizer.fit(text[: len(text) - int(len(text) * val_fraction)])
        ids = tok.encode(text)
    n = len(ids)
    cut = n - int(n * val_fraction)
    dtype = torch.uint8 if tok.vocab_size <= 256 else torch.int32  # compact storage; batches are int64
    stream = torch.from_numpy(ids).to(dtype)
    return TextData(stream[:cut].clone(), stream[cut:].clone(), tok, fingerprint)


def sample_batch(
    tokens: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows: x = tokens[o : o+T], y = tokens[o+1 : o+T+1], as int64.

    One ``randint`` for the offsets and one gather for all windows (no Python loop over the batch).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    if block_size >= len(tokens):
        raise ValueError(f"context {block_size} is >= the split length ({len(tokens)} tokens)")
    offsets = torch.randint(0, len(tokens) - block_size, (batch_size,), generator=generator)
    window = tokens[offsets[:, None] + torch.arange(block_size + 1)].long()
    return window[:, :-1], window[:, 1:]
