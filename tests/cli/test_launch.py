"""``tfcl launch``: each local worker gets its TF_CONFIG, a failed worker stops the others, every wait is bounded."""

from __future__ import annotations

import argparse
import json
import sys
import time

import pytest

from tfcl.cli import launch
from tfcl.strategy import task_index, tf_configs

PYTHON = sys.executable


def test_tf_configs_give_each_worker_its_index_in_one_cluster():
    configs = tf_configs(["127.0.0.1:1000", "127.0.0.1:1001"])
    assert [config["task"] for config in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    assert all(config["cluster"] == {"worker": ["127.0.0.1:1000", "127.0.0.1:1001"]} for config in configs)
    with pytest.raises(ValueError, match="at least one worker"):
        tf_configs([])


def test_task_index_reads_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert task_index() == 0
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_configs(["a:1", "b:2", "c:3"])[2]))
    assert task_index() == 2


def test_workers_get_their_tf_config_on_free_loopback_ports(tmp_path):
    command = [PYTHON, "-c", "import os; print(os.environ['TF_CONFIG'])"]
    workers = launch.start_workers(command, 3, log_dir=tmp_path)
    assert launch.wait_for_workers(workers, timeout=60) == [0, 0, 0]
    configs = [json.loads((tmp_path / f"worker-{index}.log").read_text()) for index in range(3)]
    assert [config["task"]["index"] for config in configs] == [0, 1, 2]
    addresses = configs[0]["cluster"]["worker"]
    assert len(set(addresses)) == 3 and all(address.startswith("127.0.0.1:") for address in addresses)
    assert all(config["cluster"] == configs[0]["cluster"] for config in configs)


def test_a_failed_worker_stops_the_others():
    worker_1_fails = """
import json, os, sys, time
if json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 1:
    sys.exit(3)
time.sleep(60)
"""
    command = [PYTHON, "-c", worker_1_fails]
    start = time.monotonic()
    codes = launch.wait_for_workers(launch.start_workers(command, 2), timeout=60, grace=5)
    assert codes[1] == 3 and codes[0] != 0  # the chief was terminated, not left waiting for its peer
    assert time.monotonic() - start < 30


def test_timeout_stops_every_worker():
    workers = launch.start_workers([PYTHON, "-c", "import time; time.sleep(60)"], 2)
    with pytest.raises(TimeoutError, match="still running after 1 s"):
        launch.wait_for_workers(workers, timeout=1, grace=5)
    assert all(worker.poll() is not None for worker in workers)


def test_cli_runs_the_command_after_the_separator_and_returns_the_first_failure(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="tfcl")
    launch.register(parser.add_subparsers(required=True))
    args = parser.parse_args(["launch", "--workers", "2", "--timeout", "60", "--", PYTHON, "-c", "raise SystemExit(4)"])
    assert args.run(args) == 4
    assert "worker exit codes" in capsys.readouterr().err
    args = parser.parse_args(["launch", "--workers", "2"])
    with pytest.raises(SystemExit, match="give the command after --"):
        args.run(args)
