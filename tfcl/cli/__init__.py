"""The ``tfcl`` command line. Each sub-command lives in its own module with ``register(subparsers)``.

A command that sets a ``log_file`` default (``log_file(args)``: a local path, or None) prints only what a person
needs and sends every other tool's output to that file (:mod:`tfcl.cli.console`); ``-v`` shows it all. A
:class:`UserError` (or a missing data set) ends with one line naming the fix and exit code 2; its traceback only
under ``-v``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from tfcl.cli.console import UserError, console_to, held_back
from tfcl.data.cache import DatasetNotFoundError

# Module names under tfcl.cli, in the order they appear in ``tfcl --help``.
COMMANDS = ("run", "data", "ingest", "train", "pretrain", "launch", "eval", "export", "serve")
VERBOSE_FLAGS = ("-v", "--verbose")


def quiet_tensorflow() -> None:
    """Python logging of TensorFlow and absl at errors only; TF's C++ logger at warnings (set before TF is
    imported; ``TF_CPP_MIN_LOG_LEVEL`` in the environment wins)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfcl", description="Contrastive representation learning for Weibo-style content."
    )
    parser.add_argument(
        *VERBOSE_FLAGS,
        action="store_true",
        help="show every tool's output (TFX, Beam, pip, TensorFlow) and tracebacks; anywhere on the command line",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tfcl.cli.{name}").register(subparsers)
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed command line; ``-v`` is taken after the sub-command too."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    unknown = [arg for arg in extras if arg not in VERBOSE_FLAGS]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.verbose = args.verbose or bool(extras)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(arg in VERBOSE_FLAGS for arg in argv):
        return run_command(parse(argv), sys.stderr)
    quiet_tensorflow()
    with held_back() as early_log:
        args = parse(argv)
        start_up = early_log.read_text(encoding="utf-8", errors="replace")
    log_file = args.log_file(args) if hasattr(args, "log_file") else None
    if log_file is None:
        return run_command(args, sys.stderr)  # without a log, TF's start-up chatter is dropped
    log_file = Path(log_file).absolute()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(start_up)
    print(f"log: {log_file} (TFX, Beam, pip, TensorFlow; -v shows them here)")
    with console_to(log_file) as errors:
        return run_command(args, errors)


def is_user_error(error: Exception) -> bool:
    """A :class:`UserError`, a missing data set, or a run folder that cannot be trained into now
    (``tfcl.checkpoint.RunFolderError``, looked up only once loaded: ``tfcl --help`` imports no Keras)."""
    checkpoint = sys.modules.get("tfcl.checkpoint")
    return isinstance(error, (UserError, DatasetNotFoundError)) or (
        checkpoint is not None and isinstance(error, checkpoint.RunFolderError)
    )


def run_command(args: argparse.Namespace, errors: TextIO) -> int:
    """The sub-command's exit code; a user's error on one line of ``errors`` (its traceback too under ``-v``)."""
    try:
        return args.run(args) or 0
    except Exception as error:
        if not is_user_error(error):
            raise
        if args.verbose:
            traceback.print_exc()
        print(f"tfcl {args.command}: error: {error}", file=errors)
        return getattr(error, "exit_code", 2)


if __name__ == "__main__":
    sys.exit(main())
