"""Offline text corpora: where they are, their bytes in a deterministic order, and a fingerprint.

Corpus (``corpus=``): ``"stdlib"`` (default) = the Python standard library's ``.py`` sources, located at
run time with ``sysconfig`` (``test/``, ``idlelib/``, ``lib2to3/`` and ``site-packages/`` folders
excluded; always present, ≈ 11 MB for CPython 3.11); ``"pydoc"`` = the Python documentation reST sources
(Debian package ``python3.11-doc``; folder ``$STRUCTLEARN_PYDOC_DIR`` or
``/usr/share/doc/python3.11/html/_sources``); ``"shakespeare"`` = Tiny Shakespeare (1,115,394
characters, 65 symbols; nanoGPT's ``shakespeare_char``), read from ``$STRUCTLEARN_SHAKESPEARE`` or
``<project root>/../shared/data/tinyshakespeare.txt`` (never downloaded; its SHA-256 is checked and a
mismatch warned about); or a path to a file or a folder (every regular, non-hidden file below it, in
sorted order). Only UTF-8 text is read: a folder's other files (NUL bytes or invalid UTF-8: ``.pyc``,
images) are skipped with one warning saying how many, and a file given alone that is not UTF-8 text is a
``ValueError``. Files are concatenated in that deterministic order, cut at
``max_bytes``, and described by a fingerprint (file count, byte count, SHA-256 of the concatenation)
because the stdlib differs across patch releases. Tokenising and splitting: :mod:`structlearn.data.text`.
Nothing here downloads.
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

from structlearn.utils.validation import check_int

STDLIB_EXCLUDE = frozenset({"test", "idlelib", "lib2to3", "site-packages"})
PYDOC_DEFAULT = Path("/usr/share/doc/python3.11/html/_sources")
PYDOC_INSTALL = (
    "Install it with `sudo apt-get install python3.11-doc`, or set STRUCTLEARN_PYDOC_DIR to a folder "
    "of .rst.txt files."
)
# Tiny Shakespeare (karpathy/char-rnn data/tinyshakespeare/input.txt; /work/shared/data/README.md).
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_ENV = "STRUCTLEARN_SHAKESPEARE"
SHAKESPEARE_FILE = "tinyshakespeare.txt"
NAMED_CORPORA = ("stdlib", "pydoc", "shakespeare")


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
    """The source checkout's root (``src/structlearn/data/corpus.py`` → three levels up)."""
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


def _binary_offset(data: bytes) -> int | None:
    """Offset of the first byte that makes ``data`` not UTF-8 text (invalid UTF-8 or a NUL), else None."""
    nul = data.find(b"\0")
    try:
        data.decode("utf-8")  # Python has no validate-only call; ASCII text takes the fast path
    except UnicodeDecodeError as exc:
        return exc.start if nul < 0 else min(nul, exc.start)
    return nul if nul >= 0 else None


def _read_files(files: list[Path], max_bytes: int | None, skip_binary: bool) -> tuple[bytes, int, list[Path]]:
    """(concatenated text, files used, files skipped as not UTF-8 text). The whole file is checked
    before the ``max_bytes`` cut, so a cut inside a multi-byte character does not reject it."""
    chunks: list[bytes] = []
    skipped: list[Path] = []
    total = 0
    used = 0
    for p in files:
        if max_bytes is not None and total >= max_bytes:
            break
        data = p.read_bytes()
        bad = _binary_offset(data)
        if bad is not None:
            if not skip_binary:
                raise ValueError(
                    f"corpus file {p} is not UTF-8 text (byte {bad} is a NUL or invalid UTF-8; "
                    "convert it to UTF-8 or use a folder of text files)"
                )
            skipped.append(p)
            continue
        if max_bytes is not None and total + len(data) > max_bytes:
            data = data[: max_bytes - total]
        chunks.append(data)
        total += len(data)
        used += 1
    return b"".join(chunks), used, skipped


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
    # Binaries beside a folder's texts (.pyc, images) would add hundreds of junk symbols: skip them.
    # A file named on its own is what the user asked for, so a binary one is refused instead.
    skip_binary = len(files) > 1 or Path(source).is_dir()
    data, used, skipped = _read_files(files, max_bytes, skip_binary)
    if skipped and not used:
        raise ValueError(
            f"corpus {source} has no UTF-8 text files ({len(skipped)} skipped as binary or not UTF-8, "
            f"e.g. {skipped[0]})"
        )
    if skipped:
        warnings.warn(
            f"corpus {source}: skipped {len(skipped)} file(s) that are not UTF-8 text (e.g. {skipped[0]})",
            stacklevel=2,
        )
    if not data:
        raise ValueError(f"corpus {source} is empty (0 bytes in {len(files)} files)")
    return data, CorpusFingerprint(source, used, len(data), hashlib.sha256(data).hexdigest())
