"""A run folder's backup and lock: a half-written checkpoint does not block a rerun, two runs cannot share a folder."""

import json
import logging
import shutil
import subprocess
import sys
import textwrap

import pytest
from training_helpers import interrupted_run, train_simclr

from tfcl import cli


def truncate_newest_weights(out_dir):
    """What a crash while writing the backup (disk full) leaves: the newest weights file cut short."""
    newest = max((out_dir / "backup").rglob("*.weights.h5"), key=lambda path: path.stat().st_mtime_ns)
    newest.write_bytes(newest.read_bytes()[:100])
    return newest


def test_a_truncated_latest_backup_falls_back_to_the_previous_one_and_says_so(
    simclr_run_killed_after_two_epochs, tmp_path, caplog
):
    shutil.copytree(simclr_run_killed_after_two_epochs, tmp_path, dirs_exist_ok=True)  # copies keep their mtimes
    truncate_newest_weights(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tfcl.checkpoint"):
        model, history = train_simclr(tmp_path)
    assert len(history.history["loss"]) == 2, "resumed after the first epoch, the one the previous backup holds"
    assert int(model.optimizer.iterations.numpy()) == 3 * 2
    assert "cannot be read; resuming from previous (epoch 1)" in caplog.text
    assert not (tmp_path / "backup").exists()


def test_an_unreadable_backup_is_one_line_naming_the_folder_and_how_to_start_over(tmp_path):
    from tfcl.checkpoint import BackupUnreadable

    interrupted_run(tmp_path, after_epochs=1)
    truncate_newest_weights(tmp_path)
    with pytest.raises(BackupUnreadable) as raised:
        train_simclr(tmp_path)
    message = str(raised.value)
    assert "\n" not in message and f"rm -r {tmp_path / 'backup'}" in message
    assert (tmp_path / "backup").exists(), "nothing is deleted for the user"


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from tfcl.checkpoint import lock_run_folder
    lock_run_folder(sys.argv[1])
    print("locked", flush=True)
    time.sleep(120)
    """
)


def test_a_second_run_on_the_same_folder_exits_2_naming_the_first_runs_pid(tmp_path, capsys):
    from tfcl.checkpoint import RunBackup, RunFolderInUse, unlock_run_folder

    first = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderInUse, match=f"pid {first.pid}"):
            RunBackup(tmp_path)
        status = cli.main(["train", "simclr", "--out", str(tmp_path), "--epochs", "1", "--steps-per-epoch", "1"])
        errors = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(errors) == 1 and f"pid {first.pid}" in errors[0]
    finally:
        first.kill()
        first.wait()
    RunBackup(tmp_path)  # a killed run's lock is released with it
    unlock_run_folder(tmp_path)


@pytest.mark.parametrize(
    "tf_config, task",
    [
        (None, ""),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, ""),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, "worker-1"),
        ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, "worker-0"),
    ],
)
def test_the_workers_of_one_cluster_do_not_lock_each_other_out(tmp_path, monkeypatch, tf_config, task):
    from tfcl import checkpoint

    if tf_config:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    else:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    assert checkpoint.task_name() == task
    backup = checkpoint.RunBackup(tmp_path)
    try:
        assert backup.backup_dir.name == ("backup-" + task if task else "backup")
        assert checkpoint.lock_path(tmp_path).name == (f"run.{task}.lock" if task else "run.lock")
    finally:
        checkpoint.unlock_run_folder(tmp_path)
