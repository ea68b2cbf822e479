import json
import os
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from training_helpers import train_simclr

from tfcl import callbacks


def test_interrupted_run_resumes_from_its_last_epoch(simclr_run_killed_after_two_epochs, tmp_path):
    shutil.copytree(simclr_run_killed_after_two_epochs, tmp_path, dirs_exist_ok=True)
    assert (tmp_path / "backup").exists()
    model, history = train_simclr(tmp_path)
    assert len(history.history["loss"]) == 1, "only the third epoch should remain after resuming"
    assert int(model.optimizer.iterations.numpy()) == 3 * 2
    assert not (tmp_path / "backup").exists(), "a finished run removes its backup"
    saved = json.loads((tmp_path / "history.json").read_text())
    assert np.isfinite(saved["loss"]).all()


def run_cli(*arguments):
    """Run ``tfcl`` as a user would: a fresh process without the test suite's TF logging settings."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "tfcl.cli", *arguments], capture_output=True, text=True, env=env)


def test_cli_trains_and_evaluates(tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "train",
        "simclr",
        "--data",
        "mnist_5k",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "32",
        "--eval-every",
        "0",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "model.keras").exists() and (out / "encoder" / "saved_model.pb").exists()
    assert list((out / "logs").rglob("events.out.tfevents*")), "TensorBoard logs missing"
    assert "cuda" not in result.stderr.lower(), "TensorFlow start-up noise should be hidden"
    result = run_cli(
        "eval", "knn", "--model", str(out / "model.keras"), "--data", "mnist_5k", "--json", str(tmp_path / "knn.json")
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "knn.json").read_text())
    assert report["protocol"].startswith("weighted cosine kNN (k=20, T=0.1)") and 0.1 < report["top1"] <= 1


@pytest.mark.parametrize("clock, epochs_run", [("wall", 3), ("cpu", 5)])
def test_time_budget_stops_on_its_clock(monkeypatch, clock, epochs_run):
    # fake clocks that advance by one epoch's time at every reading: 1 s of wall clock, 0.1 s of CPU time / cores
    ticks = {"wall": 0.0, "cpu": 0.0}

    def clock_reading(name, step):
        def read():
            ticks[name] += step
            return ticks[name]

        return read

    monkeypatch.setattr(callbacks.time, "perf_counter", clock_reading("wall", 1.0))
    monkeypatch.setattr(callbacks, "cpu_seconds", clock_reading("cpu", 0.1))
    budget = callbacks.TimeBudget(2.5, clock)
    budget.set_model(keras.Sequential())
    epochs = 0
    while epochs < 5 and not getattr(budget.model, "stop_training", False):
        logs = {}
        budget.on_epoch_begin(epochs)
        budget.on_epoch_end(epochs, logs)
        epochs += 1
    assert epochs == epochs_run
    assert logs["train_seconds"] == pytest.approx(1.0 * epochs_run)
    assert logs["train_cpu_seconds"] == pytest.approx(0.1 * epochs_run)


def test_cpu_seconds_count_work_not_waiting():
    start = callbacks.cpu_seconds()
    time.sleep(0.5)
    assert callbacks.cpu_seconds() - start < 0.25
    start = callbacks.cpu_seconds()
    np.linalg.svd(np.random.default_rng(0).normal(size=(400, 400)))
    assert callbacks.cpu_seconds() > start
