"""What a ``tfcl`` command shows: its own lines on the console, every other tool's output in a log file.

Inside :func:`console_to`, ``print`` (and Keras' progress bars) reach the console; file descriptors 1 and 2 (what
subprocesses such as pip and the wheel builds of TFX user code write, and TensorFlow's C++ logger), Python
logging (TFX, Beam, absl) and the warnings of other packages go to the log file. Warnings raised by ``tfcl``
itself (e.g. a representation collapse) are something a user can act on: they stay on the console.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import absl.logging

import tfcl

PACKAGE_DIR = os.path.dirname(os.path.abspath(tfcl.__file__))
LOG_FILE = "tfcl.log"


class UserError(Exception):
    """An error the user can fix; its message names the fix. ``tfcl`` prints it on one line and exits with
    ``exit_code`` (2 unless said otherwise)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def console_stream(stream: TextIO) -> TextIO:
    """A stream on a duplicate of ``stream``'s file descriptor (the console once fd 1 and 2 go to the log);
    ``stream`` itself if it has no descriptor (e.g. captured by a test)."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return stream
    stream.flush()
    return open(os.dup(descriptor), "w", buffering=1, encoding="utf-8", errors="replace")


def show_warning_where_it_belongs(console: TextIO, log: TextIO) -> Callable[..., None]:
    """A ``warnings.showwarning``: warnings raised in ``tfcl`` on ``console``, everyone else's in ``log``."""

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if os.path.abspath(filename).startswith(PACKAGE_DIR + os.sep):
            console.write(f"warning: {message}\n")
        else:
            log.write(warnings.formatwarning(message, category, filename, lineno, line))

    return show


def tfcl_warnings_on(console: TextIO) -> logging.Handler:
    """A logging handler showing ``tfcl``'s own warnings and errors (a backup it could not read, ...) on
    ``console``; other loggers' records go to the log only."""
    handler = logging.StreamHandler(console)
    handler.setLevel(logging.WARNING)
    handler.addFilter(lambda record: record.name.split(".")[0] == "tfcl")
    handler.setFormatter(logging.Formatter("tfcl: %(levelname)s: %(message)s"))
    return handler


@contextlib.contextmanager
def held_back() -> Iterator[Path]:
    """While the command line is parsed (which imports TensorFlow): file descriptors 1 and 2 (TF's C++ start-up
    logs) and other packages' warnings into a temporary file, whose path this yields; ``print`` and argparse's
    help and errors still reach the console. The file is deleted on exit: read it inside."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tfcl-") as folder:
        path = Path(folder) / LOG_FILE
        with console_to(path, console_errors=True):
            yield path


@contextlib.contextmanager
def console_to(log_path: str | Path, console_errors: bool = False) -> Iterator[TextIO]:
    """Send everything but this process's ``print`` and ``tfcl``'s warnings to ``log_path`` (appended to);
    yields the console's error stream (for the one-line error message). Restores everything on exit.
    ``console_errors``: ``sys.stderr`` stays on the console too."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
    saved = {"stdout": sys.stdout, "stderr": sys.stderr, "showwarning": warnings.showwarning}
    console_out, console_err = console_stream(sys.stdout), console_stream(sys.stderr)
    saved_descriptors = [os.dup(1), os.dup(2)]
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout, sys.stderr = console_out, console_err if console_errors else log
    warnings.showwarning = show_warning_where_it_belongs(console_out, log)
    root = logging.getLogger()
    saved_logging = (root.handlers[:], root.level)
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [handler, tfcl_warnings_on(console_err)]
    root.setLevel(logging.INFO)
    tensorflow_logger = logging.getLogger("tensorflow")
    saved_levels = (tensorflow_logger.level, absl.logging.get_verbosity())
    tensorflow_logger.setLevel(logging.INFO)
    absl.logging.set_verbosity(absl.logging.INFO)  # absl's own setting: TF puts it back after saving a model
    try:
        yield console_err
    finally:
        for stream in (console_out, console_err, log):
            stream.flush()
        root.handlers[:], level = saved_logging
        root.setLevel(level)
        tensorflow_logger.setLevel(saved_levels[0])
        absl.logging.set_verbosity(saved_levels[1])
        os.dup2(saved_descriptors[0], 1)
        os.dup2(saved_descriptors[1], 2)
        for descriptor in saved_descriptors:
            os.close(descriptor)
        sys.stdout, sys.stderr, warnings.showwarning = saved["stdout"], saved["stderr"], saved["showwarning"]
        for stream in (console_out, console_err):
            if stream not in (saved["stdout"], saved["stderr"]):
                stream.close()
        log.close()
