"""``structlearn`` command line: one sub-command per module in this package.

Each sub-command module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Errors caused by the user's input (``ValueError``, ``FileNotFoundError``) and
operating-system errors on inputs or outputs (read-only file system, a full disk, an output path that
is a file, ...) are printed as one line naming the path and the cause and exit with code 2; argparse
does the same for malformed flags (one line, no usage block).

Exit codes of every command: 0 done, 1 training diverged (``train``), 2 bad input or an OS error,
130 interrupted by SIGINT (Ctrl-C), 143 terminated by SIGTERM (``train`` saves a checkpoint and
writes ``result.json`` with status ``interrupted`` first), 141 (128 + SIGPIPE) when the reader of
stdout went away (``structlearn sample … | head``): the command stops quietly, with no message.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

# Commands whose outputs are published as one unit when the command succeeds (all or nothing).
# Not ``train``: its checkpoints and metrics must reach the disk while it runs.
ONE_UNIT: frozenset[str] = frozenset(
    {"structlearn.cli.cluster", "structlearn.cli.segment", "structlearn.cli.demo"}
)

# Sub-command modules, in the order ``--help`` lists them. A module that is absent is skipped.
COMMANDS: tuple[str, ...] = ("demo", "train", "sample", "cluster", "segment", "reid")


class UsageError(ValueError):
    """Bad command-line input detected after parsing (exit code 2)."""


def one_line_error(parser: argparse.ArgumentParser) -> Any:
    """A replacement for ``parser.error``: the first line of the message, no usage block, exit 2."""

    def error(message: str) -> NoReturn:
        print(f"{parser.prog}: error: {one_line(message)}", file=sys.stderr)
        sys.exit(2)

    return error


def one_line(message: str) -> str:
    """A multi-line message joined into one line."""
    return "; ".join(line.strip() for line in str(message).strip().splitlines() if line.strip())


def os_error_message(exc: OSError) -> str:
    """``cannot write PATH: cause`` (or the OS message with the path) for an ``OSError``."""
    from structlearn.utils.io import OutputError

    if isinstance(exc, OutputError):
        return str(exc)
    reason = exc.strerror or one_line(str(exc)) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def checkpoint_file(path: str | os.PathLike[str], name: str | None = None) -> Path:
    """``path``, or the file ``name`` of the run folder ``path`` (default: the checkpoint ``structlearn
    train`` writes; ``structlearn reid`` passes its model file)."""
    from structlearn.train.state import CHECKPOINT_NAME

    src = Path(path)
    return src / (name or CHECKPOINT_NAME) if src.is_dir() else src


def _output_unit(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """All-or-nothing publication of the command's outputs (``ONE_UNIT`` commands only)."""
    from structlearn.utils.io import publish_together

    return (
        publish_together() if getattr(args.func, "__module__", "") in ONE_UNIT else contextlib.nullcontext()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="structlearn",
        description="Deeply normalized Transformers, warmup-free training and scalable subspace clustering.",
    )
    from structlearn import __version__

    parser.add_argument("--version", action="version", version=f"structlearn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"structlearn.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"structlearn.cli.{name}":
                continue
            raise
        module.register(sub)
    parser.error = one_line_error(parser)  # type: ignore[method-assign]
    for sub_parser in sub.choices.values():
        sub_parser.error = one_line_error(sub_parser)  # type: ignore[method-assign]
    return parser


def _one_line_warnings(command: str) -> None:
    """Library warnings reach a CLI user as one line each, not as Python's file:line + source dump."""

    def show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
        print(f"structlearn {command}: warning: {text}", file=sys.stderr)

    warnings.showwarning = show  # type: ignore[assignment]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _one_line_warnings(args.command)
    try:
        with _output_unit(args):
            return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader closed stdout (`| head`): stop quietly. Point stdout at /dev/null so that the
        # interpreter's final flush cannot fail again (docs.python.org/3/library/signal.html#note-on-sigpipe).
        with contextlib.suppress(OSError, ValueError):  # ValueError: stdout has no descriptor
            fd = sys.stdout.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        return 128 + signal.SIGPIPE
    except ValueError as exc:
        msg = one_line(str(exc)) or type(exc).__name__
        print(f"structlearn {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:  # FileNotFoundError, PermissionError, a full disk, a read-only mount, ...
        print(f"structlearn {args.command}: error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"structlearn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
