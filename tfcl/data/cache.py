"""Where fetched data sets live: ``$TFCL_DATA_DIR`` (default ``~/.cache/tfcl``), one folder per data set."""

from __future__ import annotations

import os
from pathlib import Path

# Written last into a data set's folder, once everything in it was extracted and verified.
COMPLETE_MARKER = ".complete"


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not in the cache; the message names the command that fetches it."""

    def __init__(self, name: str, path: str | os.PathLike) -> None:
        super().__init__(
            f"Data set '{name}' is not in {path}. Fetch it with:  tfcl data fetch {name}"
            f"  (or set TFCL_DATA_DIR to a folder that has it)"
        )
        self.name = name
        self.path = path


def data_dir() -> Path:
    """The cache folder: ``$TFCL_DATA_DIR``, or ``~/.cache/tfcl``."""
    return Path(os.environ.get("TFCL_DATA_DIR", Path.home() / ".cache" / "tfcl")).expanduser()


def dataset_dir(name: str, must_exist: bool = True) -> Path:
    """The folder of data set ``name``; raises :class:`DatasetNotFoundError` if it was never fetched."""
    path = data_dir() / name
    if must_exist and not (path / COMPLETE_MARKER).exists():
        raise DatasetNotFoundError(name, path)
    return path
