"""The ``tfcl`` command line. Each sub-command lives in its own module with ``register(subparsers)``."""
import argparse
import importlib
import os
import sys

# Module names under tfcl.cli, in the order they appear in ``tfcl --help``.
COMMANDS = ("data", "train", "eval")


def quiet_tensorflow():
    """Hide TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) before TF is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


def build_parser():
    parser = argparse.ArgumentParser(prog="tfcl", description="Contrastive representation learning for Weibo-style content.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tfcl.cli.{name}").register(subparsers)
    return parser


def main(argv=None):
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
