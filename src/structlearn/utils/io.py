"""Atomic file output: write to a temporary file in the target folder, then rename.

A crash or a raised error never leaves a half-written file at the destination path.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

import numpy as np

# Writes staged by an enclosing ``publish_together`` block (None: publish each file at once).
_Staged = list[tuple[Path, Path, list[Path]]]  # (temporary file, destination, folders created for it)
_BATCH: ContextVar[_Staged | None] = ContextVar("structlearn_output_batch", default=None)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary file lives in the same directory so that ``os.replace`` is atomic. If the body
    raises, the temporary file is removed and ``path`` is left untouched.
    """
    dest = Path(path)
    created: list[Path] = []
    try:
        created = make_dirs(dest.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        remove_empty_dirs(created)
        raise output_error(dest, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files and some writers (safetensors) recreate the file; published
        # outputs get the usual permissions (0666 minus umask), like any other file the user creates.
        tmp_path.chmod(0o666 & ~current_umask())
        batch = _BATCH.get()
        if batch is None:
            try:
                os.replace(tmp_path, dest)
            except OSError as exc:  # e.g. IsADirectoryError: it names the temporary file, not dest
                raise output_error(dest, exc) from None
        else:
            batch.append((tmp_path, dest, created))
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        remove_empty_dirs(created)  # a failed write leaves no empty folders behind either
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | IsADirectoryError):
            # Name the destination, never the internal temporary file.
            raise output_error(dest, exc) from None
        raise


def make_dirs(folder: Path) -> list[Path]:
    """``mkdir -p folder``; the folders it created, outermost first (for :func:`remove_empty_dirs`)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    created = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError:
            remove_empty_dirs(created)
            raise
        created.append(d)
    return created


def remove_empty_dirs(created: list[Path]) -> None:
    """Undo :func:`make_dirs` (innermost first), keeping any folder something else wrote into."""
    for d in reversed(created):
        with contextlib.suppress(OSError):
            d.rmdir()


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


class OutputError(OSError):
    """An output could not be written: ``str()`` is one line naming the path and the cause."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def output_error(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """``exc`` re-labelled with the user-visible ``path`` (never a temporary name)."""
    code = exc.errno if exc.errno is not None else errno.EIO
    reason = exc.strerror or os.strerror(code)
    return OutputError(code, reason, str(path))


def check_output_path(path: str | os.PathLike[str], flag: str, *, directory: bool = False) -> Path:
    """Check, before any work, that ``path`` (a file, or a folder if ``directory``) can be written.

    Nothing is created: the path must not be of the wrong kind, the nearest existing ancestor must be a
    folder, and a probe file must be creatable there (``os.access`` is not enough: root passes it on a
    read-only mount's files but not on writes). Raises ``ValueError`` (wrong kind) or ``OutputError``.
    """
    p = Path(path)
    if directory and p.exists() and not p.is_dir():
        raise ValueError(f"{flag} {p} exists and is not a directory")
    if not directory and p.is_dir():
        raise ValueError(f"{flag} {p} is a directory")
    parent = p if directory and p.is_dir() else p.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{flag} {p}: {parent} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".structlearn-probe.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise output_error(p, exc) from None
    os.close(fd)
    Path(probe).unlink()
    if os.statvfs(parent).f_bavail == 0:  # an empty probe file fits on a full disk; the outputs would not
        raise OutputError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(p))
    return p


def clean_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files left in ``folder`` by an interrupted atomic write (``.<name>.*.tmp``).

    Call it only while holding the folder's lock (:func:`lock_folder`), so no live writer is hit.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        if tmp.is_file():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


LOCK_NAME = ".structlearn.lock"


class FolderLock:
    """An exclusive, non-blocking ``flock`` on ``folder/.structlearn.lock`` (see :func:`lock_folder`)."""

    def __init__(self, folder: Path, handle: IO[Any], created: list[Path]) -> None:
        self.folder, self._handle, self._created = folder, handle, created

    def release(self, failed: bool = False) -> None:
        """Unlock. After a failed run in a folder this lock created and nothing else was written to,
        remove the lock file and the folder too, so a refused run leaves nothing behind."""
        if self._handle.closed:
            return
        if failed and self._created and [p.name for p in self.folder.iterdir()] == [LOCK_NAME]:
            (self.folder / LOCK_NAME).unlink(missing_ok=True)
            remove_empty_dirs(self._created)
        self._handle.close()  # the kernel drops the flock with the last descriptor


def lock_folder(folder: str | os.PathLike[str], what: str = "--out") -> FolderLock:
    """Create ``folder`` if needed and lock it exclusively (``ValueError`` if another process holds it).

    The lock lives as long as the returned object (the kernel also releases it when the process dies,
    even on ``kill -9``), so a second run on the same folder fails at once instead of mixing outputs.
    """
    folder = Path(folder)
    created: list[Path] = []
    try:
        created = make_dirs(folder)
        fh = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - owned by the FolderLock
    except OSError as exc:
        remove_empty_dirs(created)
        raise output_error(folder, exc) from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ValueError(f"{what} {folder} is in use by another structlearn run (locked)") from None
    return FolderLock(folder, fh, created)


@contextlib.contextmanager
def publish_together() -> Iterator[None]:
    """Publish every :func:`atomic_path` write made inside the block as one unit: all or none.

    Inside the block each write stays in its temporary file; on a clean exit all are renamed onto their
    destinations (renames within a folder need no space, so they do not fail half-way for lack of it),
    on any error all temporary files are removed and no destination is touched.
    """
    if _BATCH.get() is not None:  # nested: part of the enclosing unit
        yield
        return
    staged: _Staged = []
    token = _BATCH.set(staged)
    try:
        yield
    except BaseException:
        _discard(staged)
        raise
    finally:
        _BATCH.reset(token)
    done = 0
    try:
        for tmp, dest, _ in staged:
            os.replace(tmp, dest)
            done += 1
    except OSError as exc:
        _discard(staged[done:])
        raise output_error(staged[done][1], exc) from None


def _discard(staged: _Staged) -> None:
    for tmp, _, _ in staged:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    for _, _, created in reversed(staged):
        remove_empty_dirs(created)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open`` that only publishes the file once the ``with`` body finished without error."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically (sorted keys, indented, non-finite floats rejected)."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_json_default)
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """``np.save`` atomically (no pickled objects)."""
    arr = np.asarray(array)
    if arr.dtype == object:
        raise ValueError("refusing to save an object array (it would need pickle)")
    with atomic_open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")
