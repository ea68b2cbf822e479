"""A training run folder's safety: one run at a time on it, and a backup that survives a crash while it is written.

:class:`RunBackup` is the ``BackupAndRestore`` of :func:`tfcl.training.fit_and_save`. Creating it locks the run
folder (:func:`lock_run_folder`: a second process training into it stops at once, naming the first one's pid). At
the end of each epoch it writes the model (weights and optimizer state) and the epoch to ``backup/latest/``, keeping
the checkpoint that one replaces as ``backup/previous/``; each is written in full under ``backup/staged/`` and then
renamed into place. A run started again restores the newest checkpoint it can read: if ``latest`` cannot be read it
says so and resumes from ``previous``; if no checkpoint can be read it stops with :class:`BackupUnreadable`, which
names the folder and the command to start over. A finished run removes ``backup/`` and releases the lock.

In a multi-worker cluster (``TF_CONFIG``) each task other than the chief has its own lock and backup
(``run.worker-1.lock``, ``backup-worker-1/``), so the workers of one run share a folder but two runs do not.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path

import keras

logger = logging.getLogger(__name__)
LOCK_FILE = "run.lock"  # in the run folder: the lock is held on it; it names the pid of the last run that held it
BACKUP_DIR = "backup"
CHECKPOINTS = ("latest", "previous")  # newest first
WEIGHTS_FILE, STATE_FILE = "model.weights.h5", "state.json"

_held_locks: dict[str, int] = {}  # lock file path → the open descriptor holding it, for this process


class RunFolderError(RuntimeError):
    """A run folder that cannot be trained into now; the CLI prints it as one line and exits 2."""


class RunFolderInUse(RunFolderError):
    """Another process is training into the run folder."""


class BackupUnreadable(RunFolderError):
    """The run folder's backup exists but no checkpoint of it can be read."""


def task_name() -> str:
    """This process's task in a multi-worker cluster (``TF_CONFIG``): "" for the chief (the chief task, else worker
    0) and for a process outside a cluster, else ``"<type>-<index>"``."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    kind, index = config.get("task", {}).get("type"), config.get("task", {}).get("index", 0)
    chief = kind in (None, "chief") or (kind == "worker" and index == 0 and "chief" not in config.get("cluster", {}))
    return "" if chief else f"{kind}-{index}"


def backup_dir(out_dir: str | os.PathLike) -> Path:
    """The backup folder of ``out_dir`` for this process's task (:func:`task_name`)."""
    return Path(out_dir) / "-".join(filter(None, (BACKUP_DIR, task_name())))


def lock_path(out_dir: str | os.PathLike) -> Path:
    """The lock file of ``out_dir`` for this process's task (:func:`task_name`)."""
    task = task_name()
    return Path(out_dir).resolve() / (f"run.{task}.lock" if task else LOCK_FILE)


def lock_run_folder(out_dir: str | os.PathLike) -> None:
    """Hold the lock of ``out_dir`` for this process until :func:`unlock_run_folder` or the process ends (a killed
    run's lock is released by the system). Raises :class:`RunFolderInUse` naming the process that holds it."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = str(lock_path(out_dir))
    if path in _held_locks:
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(descriptor, 64).decode(errors="replace").strip() or "unknown"
        os.close(descriptor)
        raise RunFolderInUse(
            f"{out_dir} is in use by another training run (pid {holder}, lock {path}): wait for it to finish, "
            "stop it, or train into another --out"
        ) from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    _held_locks[path] = descriptor


def unlock_run_folder(out_dir: str | os.PathLike) -> None:
    """Release this process's lock of ``out_dir`` (the lock file stays: removing it could let two runs in)."""
    descriptor = _held_locks.pop(str(lock_path(out_dir)), None)
    if descriptor is not None:
        os.close(descriptor)


class RunBackup(keras.callbacks.Callback):
    """``BackupAndRestore`` of the run folder ``out_dir`` with two checkpoints, under a lock (see the module)."""

    def __init__(self, out_dir: str | os.PathLike):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.backup_dir = backup_dir(out_dir)
        lock_run_folder(self.out_dir)

    def on_train_begin(self, logs: dict | None = None) -> None:
        unreadable = []
        for name in CHECKPOINTS:
            checkpoint = self.backup_dir / name
            if not checkpoint.exists():
                continue
            try:
                epoch = self._restore(checkpoint)
            except (OSError, ValueError, KeyError) as error:
                unreadable.append(f"{checkpoint}: {' '.join(str(error).split())}")
                continue
            if unreadable:
                logger.warning("%s cannot be read; resuming from %s (epoch %d)", "; ".join(unreadable), name, epoch)
            return
        if unreadable:
            raise BackupUnreadable(
                f"the training backup in {self.backup_dir} cannot be read ({'; '.join(unreadable)}): to start "
                f"over, remove it (rm -r {self.backup_dir}) and run the same command again"
            )

    def _restore(self, checkpoint: Path) -> int:
        state = json.loads((checkpoint / STATE_FILE).read_text())
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its variables must exist to be loaded
        self.model.load_weights(checkpoint / WEIGHTS_FILE)
        self.model._initial_epoch = state["epoch"]  # where fit starts, as keras.callbacks.BackupAndRestore sets it
        return state["epoch"]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        staged = self.backup_dir / "staged"
        shutil.rmtree(staged, ignore_errors=True)  # what a run killed while writing it left
        staged.mkdir(parents=True)
        self.model.save_weights(staged / WEIGHTS_FILE)
        (staged / STATE_FILE).write_text(json.dumps({"epoch": epoch + 1}))
        latest, previous = (self.backup_dir / name for name in CHECKPOINTS)
        if latest.exists():
            shutil.rmtree(previous, ignore_errors=True)
            latest.rename(previous)
        staged.rename(latest)

    def on_train_end(self, logs: dict | None = None) -> None:
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        unlock_run_folder(self.out_dir)
