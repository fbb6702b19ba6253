"""Offline text corpora, character/byte tokenisation and a vectorised language-model batch sampler.

Corpus (``corpus=``): ``"stdlib"`` (default) = the Python standard library's ``.py`` sources, located at
run time with ``sysconfig`` (``test/``, ``idlelib/``, ``lib2to3/`` and ``site-packages/`` folders
excluded; always present, ≈ 11 MB for CPython 3.11); ``"pydoc"`` = the Python documentation reST sources
(Debian package ``python3.11-doc``; folder ``$STRUCTLEARN_PYDOC_DIR`` or
``/usr/share/doc/python3.11/html/_sources``); ``"shakespeare"`` = Tiny Shakespeare (1,115,394
characters, 65 symbols; nanoGPT's ``shakespeare_char``), read from ``$STRUCTLEARN_SHAKESPEARE`` or
``<project root>/../shared/data/tinyshakespeare.txt`` (never downloaded; its SHA-256 is checked and a
mismatch warned about); or a path to a file or a folder (every regular, non-hidden file below it, in
sorted order). Files are concatenated in that deterministic order, cut at
``max_bytes``, and described by a fingerprint (file count, byte count, SHA-256 of the concatenation)
because the stdlib differs across patch releases.

Split by position: the first 90 % of the token stream trains, the last 10 % validates (Tiny Shakespeare,
named or given by path: nanoGPT's cut ``int(0.9·n)``, one token earlier than the default rule, so the
splits are nanoGPT's to the character). Tokenisers:
``char`` (vocabulary = the sorted distinct characters of the train split, id 0 reserved for characters
unseen there) and ``byte`` (256 ids, no vocabulary). Nothing here downloads.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sysconfig
import warnings
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
# Tiny Shakespeare (karpathy/char-rnn data/tinyshakespeare/input.txt; /work/shared/data/README.md).
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_ENV = "STRUCTLEARN_SHAKESPEARE"
SHAKESPEARE_FILE = "tinyshakespeare.txt"
NAMED_CORPORA = ("stdlib", "pydoc", "shakespeare")
UNKNOWN_CHAR = "\ufffd"
_CHUNK = 1 << 20


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


def project_root() -> Path:
    """The source checkout's root (``src/structlearn/data/text.py`` → three levels up)."""
    return Path(__file__).resolve().parents[3]


def shakespeare_path() -> Path:
    """Tiny Shakespeare from ``$STRUCTLEARN_SHAKESPEARE``, else ``<root>/../shared/data/``; no download."""
    env = os.environ.get(SHAKESPEARE_ENV)
    shared = project_root().parent / "shared" / "data" / SHAKESPEARE_FILE
    if env:
        path = Path(env).expanduser()
        if path.is_file():
            return path
        raise FileNotFoundError(
            f"{SHAKESPEARE_ENV}={env} is not a file (Tiny Shakespeare is never downloaded)"
        )
    if shared.is_file():
        return shared
    raise FileNotFoundError(
        f"Tiny Shakespeare not found: set {SHAKESPEARE_ENV} to the file, or place it at {shared} "
        "(it is never downloaded)"
    )


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
    if str(corpus) == "shakespeare":
        path = shakespeare_path()
        return f"shakespeare:{path}", [path]
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
    if key in NAMED_CORPORA:
        # The built-in corpora do not change during a process: benchmarks read them once.
        env = (os.environ.get("STRUCTLEARN_PYDOC_DIR"), os.environ.get(SHAKESPEARE_ENV))
        data, fp = _read_named_corpus(key, env, max_bytes)
        if key == "shakespeare" and max_bytes is None and fp.sha256 != SHAKESPEARE_SHA256:
            warnings.warn(
                f"{fp.source} has SHA-256 {fp.sha256[:16]}…, not Tiny Shakespeare's "
                f"{SHAKESPEARE_SHA256[:16]}… (a different file: figures are not comparable to nanoGPT's)",
                stacklevel=2,
            )
        return data, fp
    return _read_corpus(key, max_bytes)


@functools.lru_cache(maxsize=4)
def _read_named_corpus(
    key: str, _env: tuple[str | None, str | None], max_bytes: int | None
) -> tuple[bytes, CorpusFingerprint]:
    return _read_corpus(key, max_bytes)


def is_shakespeare(fingerprint: CorpusFingerprint) -> bool:
    """The corpus is Tiny Shakespeare (by content, whether named or given by path)."""
    return fingerprint.sha256 == SHAKESPEARE_SHA256


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

    def encode(self, text: str, dtype: Any = np.int64) -> np.ndarray:
        """Vectorised lookup (searchsorted over the sorted code points); unseen characters → 0.

        Works in chunks of 2²⁰ characters so that a corpus of tens of MB needs no int64 temporaries
        of its own size; ``dtype`` is the output type (e.g. uint8 when the vocabulary fits).
        """
        cps = _codepoints(text)
        out = np.zeros(len(cps), dtype=dtype)
        if len(self._codes) == 0:
            return out
        for i in range(0, len(cps), _CHUNK):
            c = cps[i : i + _CHUNK]
            pos = np.searchsorted(self._codes, c).clip(max=len(self._codes) - 1)
            out[i : i + _CHUNK] = np.where(self._codes[pos] == c, pos + 1, 0)
        return out

    def decode(self, ids: Any) -> str:
        table = np.array([UNKNOWN_CHAR, *self.chars], dtype=object)
        return "".join(table[np.asarray(ids, dtype=np.int64)].tolist())

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "codepoints": self._codes.astype(np.int64).tolist()}


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255."""

    kind = "byte"
    vocab_size = 256

    def encode(self, data: bytes | str, dtype: Any = np.int64) -> np.ndarray:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        return np.frombuffer(raw, dtype=np.uint8).astype(dtype)

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
    """Code points as a uint32 view of the UTF-32 encoding (no per-character Python work)."""
    return np.frombuffer(text.encode("utf-32-le", errors="replace"), dtype=np.uint32)


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
        """A context needs ``block_size + 1`` consecutive tokens in each split (``block_size``: a validated
        positive int, e.g. ``TrainConfig.block_size``)."""
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
    # nanoGPT's prepare.py cuts Tiny Shakespeare at int(0.9·n); the library's rule keeps n − int(0.1·n).
    nano = is_shakespeare(fingerprint) and val_fraction == 0.1

    def cut_at(n: int) -> int:
        return int(n * (1 - val_fraction)) if nano else n - int(n * val_fraction)

    if tokenizer == "byte":
        tok: Tokenizer = ByteTokenizer()
        ids = tok.encode(raw, dtype=np.uint8)
    else:
        text = raw.decode("utf-8", errors="replace")
        if vocabulary is not None:
            tok = tokenizer_from_state(vocabulary)
            if tok.kind != "char":
                raise ValueError(f"vocabulary is for the {tok.kind!r} tokenizer, not 'char'")
        else:
            tok = CharTokenizer.fit(text[: cut_at(len(text))])
        # compact storage (one byte per token for vocabularies up to 256); batches are int64
        ids = tok.encode(text, dtype=np.uint8 if tok.vocab_size <= 256 else np.int32)
        del text
    cut = cut_at(len(ids))
    stream = torch.from_numpy(ids)
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
