"""``structlearn`` command line: one sub-command per module in this package.

Each sub-command module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Errors caused by the user's input (``ValueError``, ``FileNotFoundError``)
are printed as one line and exit with code 2; argparse does the same for malformed flags.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

# Sub-command modules, in the order ``--help`` lists them. A module that is absent is skipped.
COMMANDS: tuple[str, ...] = ("demo", "train", "cluster", "segment", "reid")


class UsageError(ValueError):
    """Bad command-line input detected after parsing (exit code 2)."""


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
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"structlearn {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"structlearn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
