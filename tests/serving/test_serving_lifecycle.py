"""A version's life in the server: warm-up before traffic, memory back after unloading, a bounded stop, a
corrupt version that never takes over, and empty texts refused (issue 21's serving findings)."""

import os
import resource
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_models import MODEL_NAME, copy_of, publish, push, save_toy_model
from tensorflow_serving.apis import model_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfcl.serving import ModelServer, ServingClient, single_model_config
from tfcl.serving.models import ServedModel
from tfcl.serving.servable import WARMUP_FILE, WARMUP_REQUEST_ITERATIONS, ServableVersion

TEXTS = {"texts": np.array(["猫 狗"], dtype=object)}
WEIBO_SIGNATURES = ("predict_topics", "embed_post", "similar_posts", "serving_default")


def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def wait_for(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def test_unloaded_versions_give_their_memory_back(tmp_path):
    """RSS after 10 swaps of a 48 MB model stays within 10 % of RSS after the first swap."""
    staged = tmp_path / "staged"
    for version in range(1, 12):
        save_toy_model(staged / str(version), seed=version, ballast_mb=48)
    base = tmp_path / "model"
    base.mkdir()
    model = ServedModel(model_server_config_pb2.ModelConfig(name=MODEL_NAME, base_path=str(base)))
    after = {}
    for version in range(1, 12):
        (staged / str(version)).rename(base / str(version))
        model.refresh()
        with model.serve(model_pb2.ModelSpec(name=MODEL_NAME)) as servable:
            assert servable.version == version
        after[version - 1] = rss_mb()  # after[n]: after n swaps
    assert after[10] <= 1.1 * after[1], after


def test_first_requests_after_a_swap_are_as_fast_as_steady_ones(tmp_path, weibo_topics_export):
    """Warm-up records (written at export) are replayed before a version is AVAILABLE, so its first calls do not
    pay for TensorFlow's first call of each signature (about a second each without them).

    Issue 21 asks for 2x the steady p99; benchmarks/reliability_serving.py measures it as a median over several
    swaps. One call on this shared machine can exceed 2x a p99 of a few ms by noise alone, so the bound checked
    here, on single calls, is 2x p99 or 100 ms; test_warm_up_runs_each_record_twice_after_reading_them_all checks
    the warm-up that brings the ratio down. Both versions are copies of one export: each is loaded and warmed up
    on its own.
    """
    model_dir = tmp_path / "weibo_topics"
    publish(model_dir, 1, copy_of(weibo_topics_export))
    assert (model_dir / "1" / WARMUP_FILE).is_file()
    with ModelServer(single_model_config("weibo_topics", model_dir), port=0, poll_seconds=0.1) as server:
        with ServingClient(server.address, timeout=120) as client:

            def call(signature_name):
                started = time.perf_counter()
                response = client.predict_response("weibo_topics", TEXTS, signature_name=signature_name)
                return time.perf_counter() - started, response.model_spec.version.value

            for _ in range(10):
                for name in WEIBO_SIGNATURES:
                    call(name)
            steady = [call(name)[0] for _ in range(50) for name in WEIBO_SIGNATURES]
            p99 = np.percentile(steady, 99)
            publish(model_dir, 2, copy_of(weibo_topics_export))
            client.wait_until_available("weibo_topics", 2)
            wait_for(lambda: client.model_status("weibo_topics", version=1) == {1: "END"})
            first = {name: call(name) for name in WEIBO_SIGNATURES}
    assert {version for _, version in first.values()} == {2}
    slow = {name: seconds for name, (seconds, _) in first.items() if seconds > max(2 * p99, 0.1)}
    assert not slow, f"first calls {slow} s against a steady p99 of {p99:.4f} s"


def test_warm_up_runs_each_record_twice_after_reading_them_all(tmp_path):
    """A signature's first call after its warm-up is slower when the warm-up ran it only once, or when the warm-up
    file's dataset ended between the calls: every record is read first, then the records are run twice, in order."""
    push(tmp_path / MODEL_NAME, 1)
    path = tmp_path / MODEL_NAME / "1"
    recorded = [
        prediction_log_pb2.PredictionLog.FromString(record).predict_log.request.model_spec.signature_name
        for record in tf.data.TFRecordDataset(str(path / WARMUP_FILE)).as_numpy_iterator()
    ]
    servable = ServableVersion(MODEL_NAME, 1, path)
    run, calls = servable.run, []
    servable.run = lambda signature_name, arrays: calls.append(signature_name) or run(signature_name, arrays)
    assert servable.warm_up() == len(recorded)
    assert calls == recorded * WARMUP_REQUEST_ITERATIONS
    assert WARMUP_REQUEST_ITERATIONS == 2
    assert len(set(recorded)) == len(recorded) > 1


@pytest.mark.parametrize("grace", [1.0])
def test_sigterm_stops_within_grace_while_a_long_call_is_in_flight(tmp_path, grace):
    push(tmp_path / MODEL_NAME, 1)
    command = [sys.executable, "-m", "tfcl.cli", "serve", "--model-name", MODEL_NAME]
    command += ["--model-base-path", str(tmp_path / MODEL_NAME), "--port", "0", "--grace", str(grace)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = server.stdout.readline()
        assert banner.startswith("Serving"), banner + server.stderr.read()
        errors = []

        def long_call():
            with ServingClient(banner.split()[3], timeout=300) as client:
                try:
                    client.predict(MODEL_NAME, {"steps": np.array([10**9])}, signature_name="spin")
                except grpc.RpcError as error:
                    errors.append(error.code())

        caller = threading.Thread(target=long_call)
        caller.start()
        time.sleep(2)  # the call is running in the server
        assert caller.is_alive()
        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        returncode = server.wait(timeout=60)
        stopped_in = time.monotonic() - stopping
        caller.join(60)
        stderr = server.stderr.read()
    finally:
        server.kill()
    assert returncode == 1 and stopped_in < grace + 5, (returncode, stopped_in, stderr[-2000:])
    assert "Calls still running after --grace 1 s were cancelled" in stderr
    assert errors and errors[0] in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)


def test_corrupt_new_version_never_replaces_the_serving_one(tmp_path):
    push(tmp_path / MODEL_NAME, 1)
    config = single_model_config(MODEL_NAME, tmp_path / MODEL_NAME)
    with ModelServer(config, port=0, poll_seconds=0.1) as server, ServingClient(server.address) as client:
        corrupt = tmp_path / MODEL_NAME / "2"
        (corrupt / "variables").mkdir(parents=True)
        (corrupt / "saved_model.pb").write_bytes(os.urandom(512))
        wait_for(lambda: client.model_status(MODEL_NAME).get(2) == "END")
        assert client.model_status(MODEL_NAME) == {2: "END", 1: "AVAILABLE"}
        assert client.predict_response(MODEL_NAME, TEXTS).model_spec.version.value == 1
        (failed,) = client.model_status_response(MODEL_NAME, version=2).model_version_status
        assert failed.status.error_code != 0 and failed.status.error_message  # the load error, as TF Serving's


@pytest.mark.parametrize("text", ["", "  ", "\u3000\n"])
def test_an_empty_or_blank_text_is_invalid_argument(tmp_path_factory, text):
    base = tmp_path_factory.getbasetemp() / "empty-text" / MODEL_NAME
    if not base.exists():
        push(base, 1)
    with ModelServer(single_model_config(MODEL_NAME, base), port=0) as server, ServingClient(server.address) as client:
        with pytest.raises(grpc.RpcError) as raised:
            client.predict(MODEL_NAME, {"texts": np.array(["猫", text], dtype=object)})
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "Input 'texts' item 1 is an empty or blank string"
