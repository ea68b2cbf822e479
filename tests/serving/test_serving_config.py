"""Model config: --model_config_file polling, HandleReloadConfigRequest, and the base path layout check."""

import logging
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from serving_models import MODEL_NAME, push, save_toy_model
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

from tfcl.serving import ModelServer, ServingClient, single_model_config
from tfcl.serving.config import parse_model_config

TEXTS = {"texts": np.array(["猫 狗"], dtype=object)}


def config_text(models):
    entries = "".join(f'config {{ name: "{name}" base_path: "{path}" }}\n' for name, path in models.items())
    return f"model_config_list {{\n{entries}}}\n"


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def model_names(client, names):
    """The names among ``names`` that the server knows (GetModelStatus answers)."""
    known = set()
    for name in names:
        try:
            client.model_status(name)
            known.add(name)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
    return known


def test_config_file_change_adds_and_removes_models_while_clients_call_a_third(tmp_path):
    for name in ("third", "removed", "added"):
        push(tmp_path / name, 1)
    paths = {name: tmp_path / name for name in ("third", "removed", "added")}
    config_file = tmp_path / "models.config"
    config_file.write_text(config_text({"third": paths["third"], "removed": paths["removed"]}))
    server = ModelServer(model_config_file=config_file, config_poll_seconds=0.2, poll_seconds=0.2, port=0).start()
    answered, failures, stop = [], [], threading.Event()

    def call_third():
        with ServingClient(server.address) as client:
            while not stop.is_set():
                try:
                    client.predict("third", TEXTS)
                    answered.append(1)
                except grpc.RpcError as error:
                    failures.append((error.code(), error.details()))

    clients = [threading.Thread(target=call_third) for _ in range(8)]
    try:
        with ServingClient(server.address) as client:
            assert model_names(client, paths) == {"third", "removed"}
            for thread in clients:
                thread.start()
            wait_for(lambda: len(answered) >= 40)
            config_file.write_text(config_text({"third": paths["third"], "added": paths["added"]}))
            wait_for(lambda: model_names(client, paths) == {"third", "added"})
            assert client.predict_response("added", TEXTS).model_spec.version.value == 1
            with pytest.raises(grpc.RpcError) as raised:
                client.predict("removed", TEXTS)
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            calls_before = len(answered)
            wait_for(lambda: len(answered) >= calls_before + 40)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
        server.stop()
    assert not failures, failures[:3]


def test_a_config_file_that_does_not_parse_keeps_the_current_config(tmp_path, caplog):
    push(tmp_path / "toy", 1)
    config_file = tmp_path / "models.config"
    config_file.write_text(config_text({"toy": tmp_path / "toy"}))
    with ModelServer(model_config_file=config_file, config_poll_seconds=0.1, poll_seconds=0.1, port=0) as server:
        with caplog.at_level(logging.ERROR, logger="tfcl.serving.server"):
            config_file.write_text("model_config_list { config { name: ")
            wait_for(lambda: any("not reloaded" in record.getMessage() for record in caplog.records))
        with ServingClient(server.address) as client:
            assert client.predict_response("toy", TEXTS).model_spec.name == "toy"


def test_handle_reload_config_request_serves_the_new_config_and_refuses_a_bad_one(tmp_path):
    push(tmp_path / "first", 1)
    push(tmp_path / "second", 1)
    with ModelServer(single_model_config("first", tmp_path / "first"), port=0) as server:
        channel = grpc.insecure_channel(server.address)
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = model_management_pb2.ReloadConfigRequest(
            config=parse_model_config(config_text({"second": tmp_path / "second"}))
        )
        assert stub.HandleReloadConfigRequest(request, timeout=120).status.error_code == 0
        with ServingClient(server.address) as client:
            assert model_names(client, ["first", "second"]) == {"second"}
            assert client.predict_response("second", TEXTS).model_spec.name == "second"
            request.config.model_config_list.config[0].model_platform = "pytorch"
            refused = stub.HandleReloadConfigRequest(request, timeout=60).status
            assert refused.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            assert "platform 'pytorch'" in refused.error_message
            assert model_names(client, ["first", "second"]) == {"second"}
        channel.close()


def test_a_base_path_holding_the_saved_model_itself_is_an_error_saying_how_to_lay_it_out(tmp_path):
    flat = tmp_path / "clip"
    save_toy_model(flat, seed=1)  # what `tfcl train clip` writes: no version folder
    with pytest.raises(ValueError, match=r"holds a SavedModel itself.*move it into .*clip/1"):
        ModelServer(single_model_config(MODEL_NAME, flat), port=0).start()
    command = [sys.executable, "-m", "tfcl.cli", "serve", "--model-base-path", str(flat), "--port", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("tfcl serve: error: model default:")
    assert "<base_path>/<version>/saved_model.pb" in result.stderr and "Serving" not in result.stdout
