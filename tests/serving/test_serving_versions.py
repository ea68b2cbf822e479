"""How the embedded server finds, loads, swaps and unloads model versions (no gRPC involved)."""

import logging
import shutil
import threading
import time

import numpy as np
import pytest
from google.protobuf import text_format
from serving_models import MODEL_NAME, push, save_toy_model
from tensorflow_serving.apis import get_model_status_pb2, model_pb2
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from tfcl.serving.config import complete_versions, select_versions
from tfcl.serving.models import LoadRetries, ServedModel


def policy(text):
    version_policy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy()
    return text_format.Parse(text, version_policy)


@pytest.mark.parametrize(
    "policy_text, expected",
    [
        ("", {7}),
        ("latest { num_versions: 2 }", {3, 7}),
        ("all {}", {1, 3, 7}),
        ("specific { versions: 1 versions: 5 }", {1}),
    ],
)
def test_version_policy_selects_versions(policy_text, expected):
    assert select_versions(policy(policy_text), {1, 3, 7}) == expected


def test_only_complete_numeric_version_directories_count(tmp_path):
    def version_dir(name, graph=True, variables=True):
        path = tmp_path / name
        path.mkdir()
        if graph:
            (path / "saved_model.pb").write_bytes(b"")
        if variables:
            (path / "variables").mkdir()
        return path

    complete = {1: version_dir("1"), 12: version_dir("12")}
    version_dir("2", graph=False)  # tf.saved_model.save still writing: saved_model.pb comes last
    version_dir("3", variables=False)
    version_dir(".incoming-4")  # a pusher's staging directory
    version_dir("latest")
    (tmp_path / "5").write_text("a file, not a directory")
    assert complete_versions(tmp_path) == complete
    assert complete_versions(tmp_path / "missing") == {}


def served_model(base_path, policy_text="", retries=None):
    config = model_server_config_pb2.ModelConfig(name=MODEL_NAME, base_path=str(base_path))
    config.model_version_policy.CopyFrom(policy(policy_text))
    return ServedModel(config, retries)


def states(model):
    state_name = get_model_status_pb2.ModelVersionStatus.State.Name
    return {status.version: state_name(status.state) for status in model.version_status()}


def latest_spec():
    return model_pb2.ModelSpec(name=MODEL_NAME)


TEXTS = {"texts": np.array(["猫 狗"], dtype=object)}


def test_staged_version_loads_only_once_renamed_into_place(tmp_path):
    push(tmp_path, 1)
    model = served_model(tmp_path)
    model.refresh()
    staging = tmp_path / ".incoming-2"
    save_toy_model(staging, seed=2)
    model.refresh()
    assert states(model) == {1: "AVAILABLE"}
    staging.rename(tmp_path / "2")
    model.refresh()
    assert states(model) == {2: "AVAILABLE", 1: "END"}
    with model.serve(latest_spec()) as servable:
        assert servable.version == 2


def test_old_version_unloads_only_after_its_calls_finish(tmp_path):
    push(tmp_path, 1)
    model = served_model(tmp_path)
    model.refresh()
    with model.serve(latest_spec()) as old:
        push(tmp_path, 2)
        refresh = threading.Thread(target=model.refresh)
        refresh.start()
        deadline = time.monotonic() + 30
        while states(model) != {2: "AVAILABLE", 1: "UNLOADING"} and time.monotonic() < deadline:
            time.sleep(0.01)
        assert states(model) == {2: "AVAILABLE", 1: "UNLOADING"}
        with model.serve(latest_spec()) as new:
            assert new.version == 2
        assert old.run("predict_topics", TEXTS)["topics"].shape == (1, 2)  # the held version still answers
        assert refresh.is_alive()
    refresh.join(timeout=30)
    assert states(model) == {2: "AVAILABLE", 1: "END"}


def broken_version(model_dir, version):
    """A version directory whose SavedModel cannot be read (as a copy still in progress looks)."""
    broken = model_dir / str(version)
    (broken / "variables").mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    return broken


def load_errors(caplog):
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("Loading model")]


def test_broken_version_is_reported_keeps_the_old_one_serving_and_is_retried_then_left(tmp_path, caplog):
    push(tmp_path, 1)
    model = served_model(tmp_path, retries=LoadRetries(max_retries=2, interval_s=0))
    model.refresh()
    broken_version(tmp_path, 2)
    with caplog.at_level(logging.ERROR, logger="tfcl.serving.models"):
        for _ in range(5):
            model.refresh()
    errors = load_errors(caplog)
    assert len(errors) == 3 and all("version 2" in error for error in errors)  # the load, then 2 retries
    assert "retrying in 0 s (1 of 3 attempts)" in errors[0] and "not retried (3 attempts)" in errors[-1]
    (failed,) = model.version_status(2)
    assert failed.status.error_code != 0 and failed.status.error_message
    assert states(model) == {2: "END", 1: "AVAILABLE"}
    with model.serve(latest_spec()) as servable:
        assert servable.version == 1


def test_failed_load_waits_the_retry_interval(tmp_path, caplog):
    broken_version(tmp_path, 1)
    model = served_model(tmp_path, retries=LoadRetries(max_retries=5, interval_s=60))
    with caplog.at_level(logging.ERROR, logger="tfcl.serving.models"):
        model.refresh()
        model.refresh()
    assert len(load_errors(caplog)) == 1


def test_version_copied_in_place_non_atomically_loads_when_retried(tmp_path):
    push(tmp_path, 1)
    model = served_model(tmp_path, retries=LoadRetries(max_retries=5, interval_s=0))
    model.refresh()
    save_toy_model(tmp_path / ".complete-2", seed=2)
    copy = tmp_path / "2"  # copied file by file: saved_model.pb and variables/ are there, the variables not yet
    (copy / "variables").mkdir(parents=True)
    shutil.copy(tmp_path / ".complete-2" / "saved_model.pb", copy)
    model.refresh()
    assert states(model) == {2: "END", 1: "AVAILABLE"}
    shutil.copytree(tmp_path / ".complete-2" / "variables", copy / "variables", dirs_exist_ok=True)
    model.refresh()
    assert states(model) == {2: "AVAILABLE", 1: "END"}
