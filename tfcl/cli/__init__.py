"""The ``tfcl`` command line. Each sub-command lives in its own module with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from tfcl.data.cache import DatasetNotFoundError

# Module names under tfcl.cli, in the order they appear in ``tfcl --help``.
COMMANDS = ("run", "data", "ingest", "train", "launch", "eval", "serve")


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) before TF is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tfcl.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except DatasetNotFoundError as error:
        print(f"tfcl: error: {error}", file=sys.stderr)
        return 1
    except RuntimeError as error:
        checkpoint = sys.modules.get("tfcl.checkpoint")  # loaded by the commands that train, and only by them
        if checkpoint is None or not isinstance(error, checkpoint.RunFolderError):
            raise
        print(f"tfcl: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
