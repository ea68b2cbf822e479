"""TF Serving's gRPC API over a toy model: against the embedded server, or a real ``tensorflow_model_server``.

By default an embedded server runs on a free port over a temporary model base. With
``TFCL_SERVING_ADDRESS=host:port`` and ``TFCL_SERVING_MODEL_BASE=<the base directory that server watches>``,
the tests push versions into ``$TFCL_SERVING_MODEL_BASE/tfcl_toy`` and query that server instead; tests of
the embedded server's own behaviour are skipped then (serving/README.md has the commands).
"""

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_models import MODEL_NAME, SIGNATURES, png, push
from tensorflow.core.protobuf import saved_model_pb2

from tfcl.cli import COMMANDS
from tfcl.serving import ModelServer, ServingClient, read_model_config, single_model_config
from tfcl.serving.server import complete_versions

REAL_SERVER = os.environ.get("TFCL_SERVING_ADDRESS")
embedded_only = pytest.mark.skipif(bool(REAL_SERVER), reason="checks the embedded server, not TF Serving")

TEXTS = {"texts": np.array(["猫 狗", "足球 电影 音乐", "没有 这些 词"])}
EXAMPLES = {
    "serving_default": TEXTS,
    "predict_topics": TEXTS,
    "score": {"features": np.arange(8, dtype=np.float32).reshape(2, 4)},
    "image_size": {"images": np.array([png(5, 7), png(3, 2)], dtype=object)},
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    if not REAL_SERVER:
        return tmp_path_factory.mktemp("models") / MODEL_NAME
    if "TFCL_SERVING_MODEL_BASE" not in os.environ:
        pytest.fail("TFCL_SERVING_ADDRESS needs TFCL_SERVING_MODEL_BASE: the base directory that server watches")
    return Path(os.environ["TFCL_SERVING_MODEL_BASE"]) / MODEL_NAME


def next_version(model_dir):
    return max(complete_versions(model_dir), default=0) + 1


@pytest.fixture(scope="module")
def client(model_dir):
    """A client of the server under test, once that server serves a freshly pushed version of the toy model."""
    version = next_version(model_dir)
    push(model_dir, version)
    with contextlib.ExitStack() as stack:
        address = REAL_SERVER
        if not address:
            config = single_model_config(MODEL_NAME, model_dir)
            address = stack.enter_context(ModelServer(config, port=0, poll_seconds=0.1)).address
        client = stack.enter_context(ServingClient(address))
        client.wait_until_available(MODEL_NAME, version)
        yield client


@functools.cache
def in_process(version_dir):
    return tf.saved_model.load(str(version_dir))


def outputs_of(response):
    return {alias: tf.make_ndarray(tensor) for alias, tensor in response.outputs.items()}


@pytest.mark.parametrize("signature_name", SIGNATURES)
def test_predict_equals_the_saved_model_in_process(client, model_dir, signature_name):
    inputs = EXAMPLES[signature_name]
    response = client.predict_response(MODEL_NAME, inputs, signature_name=signature_name)
    version_dir = model_dir / str(response.model_spec.version.value)
    expected = in_process(version_dir).signatures[signature_name](**{k: tf.constant(v) for k, v in inputs.items()})
    outputs = outputs_of(response)
    assert outputs.keys() == expected.keys()
    for alias, value in expected.items():
        np.testing.assert_array_equal(outputs[alias], value.numpy())


def test_predict_answers_with_real_values(client):
    sizes = client.predict(MODEL_NAME, EXAMPLES["image_size"], signature_name="image_size")
    assert sizes["height"].tolist() == [5, 3] and sizes["width"].tolist() == [7, 2]
    topics = client.predict(MODEL_NAME, TEXTS)
    assert topics["topics"].shape == topics["scores"].shape == (3, 2)
    assert set(topics["topics"].ravel()) <= {b"pets", b"sports", b"film"}
    assert (np.diff(topics["scores"], axis=1) <= 0).all()  # top-k, best first


def test_response_names_the_model_version_and_default_signature(client):
    available = client.wait_until_available(MODEL_NAME)
    latest = client.predict_response(MODEL_NAME, TEXTS).model_spec
    assert (latest.name, latest.version.value, latest.signature_name) == (MODEL_NAME, max(available), "serving_default")
    oldest = min(available)
    pinned = client.predict_response(MODEL_NAME, TEXTS, version=oldest, signature_name="predict_topics").model_spec
    assert (pinned.version.value, pinned.signature_name) == (oldest, "predict_topics")


def test_output_filter_returns_only_the_asked_outputs(client):
    assert client.predict(MODEL_NAME, TEXTS, output_filter=["scores"]).keys() == {"scores"}


# (request fields, status code, part of the message). The messages are TF Serving's own where both servers share
# one; the embedded server checks shapes itself, where TF Serving leaves them to the model (here a MatMul).
BAD_REQUESTS = {
    "unknown-model": ({"model_name": "no_such_model"}, "NOT_FOUND", "Latest(no_such_model)"),
    "unknown-version": ({"version": 987654}, "NOT_FOUND", f"Specific({MODEL_NAME}, 987654)"),
    "unknown-signature": ({"signature_name": "nope"}, "FAILED_PRECONDITION", 'Serving signature key "nope" not found'),
    "missing-input": ({"inputs": {}}, "INVALID_ARGUMENT", "Missing but required: {texts}"),
    "unexpected-input": ({"inputs": {**TEXTS, "extra": [1.0]}}, "INVALID_ARGUMENT", "Sent extra: {extra}"),
    "wrong-dtype": ({"inputs": {"texts": np.ones(2, np.float32)}}, "INVALID_ARGUMENT", "to be string but float"),
    "shape-mismatch": (
        {"signature_name": "score", "inputs": {"features": np.ones((2, 3), np.float32)}},
        "INVALID_ARGUMENT",
        "incompatible",
    ),
    "corrupt-image": (
        {"signature_name": "image_size", "inputs": {"images": np.array([b"not an image"], dtype=object)}},
        "INVALID_ARGUMENT",
        "Unknown image file format",
    ),
    "unknown-output": ({"output_filter": ["nope"]}, "INVALID_ARGUMENT", "output tensor alias not found in signature"),
    "empty-batch": ({"inputs": {"texts": tf.make_tensor_proto([], tf.string)}}, "INVALID_ARGUMENT", "empty batch"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_gets_tf_servings_status(client, case):
    if case == "empty-batch" and REAL_SERVER:
        pytest.skip("TF Serving itself runs an empty batch through the model")
    request_fields, code, message = BAD_REQUESTS[case]
    fields = {"model_name": MODEL_NAME, "inputs": TEXTS, **request_fields}
    with pytest.raises(grpc.RpcError) as raised:
        client.predict(fields.pop("model_name"), fields.pop("inputs"), **fields)
    assert raised.value.code() == grpc.StatusCode[code]
    assert message in raised.value.details()


def test_metadata_has_the_saved_models_signature_defs(client, model_dir):
    version = max(client.wait_until_available(MODEL_NAME))
    signature_defs = client.signature_defs(MODEL_NAME, version=version)
    saved_model = saved_model_pb2.SavedModel.FromString((model_dir / str(version) / "saved_model.pb").read_bytes())
    assert signature_defs == dict(saved_model.meta_graphs[0].signature_def)
    assert set(SIGNATURES) <= signature_defs.keys()
    features = signature_defs["score"].inputs["features"]
    assert (features.dtype, tf.TensorShape(features.tensor_shape).as_list()) == (tf.float32.as_datatype_enum, [None, 4])


def test_model_status_shows_versions_available(client):
    states = client.model_status(MODEL_NAME)
    latest = max(version for version, state in states.items() if state == "AVAILABLE")
    assert client.model_status(MODEL_NAME, version=latest) == {latest: "AVAILABLE"}
    for model_spec, message in [
        ({"model_name": "no_such_model"}, "Could not find any versions of model no_such_model"),
        ({"model_name": MODEL_NAME, "version": 987654}, f"Could not find version 987654 of model {MODEL_NAME}"),
    ]:
        with pytest.raises(grpc.RpcError) as raised:
            client.model_status(**model_spec)
        assert (raised.value.code(), raised.value.details()) == (grpc.StatusCode.NOT_FOUND, message)


def test_version_pushed_during_a_request_stream_takes_over_without_a_failed_request(client, model_dir):
    old = max(client.wait_until_available(MODEL_NAME))
    new = next_version(model_dir)
    answers = {index: [] for index in range(3)}  # stream -> the versions that answered it, in order
    failures = []
    stop = threading.Event()

    def stream(index):
        while not stop.is_set():
            try:
                answers[index].append(client.predict_response(MODEL_NAME, TEXTS).model_spec.version.value)
            except grpc.RpcError as error:
                failures.append(error)

    streams = [threading.Thread(target=stream, args=(index,)) for index in answers]
    for thread in streams:
        thread.start()
    try:
        while not all(answers.values()):
            time.sleep(0.01)
        push(model_dir, new)
        client.wait_until_available(MODEL_NAME, new)
        deadline = time.monotonic() + 30
        while any(versions[-1] != new for versions in answers.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in streams:
            thread.join()
    assert not failures, [(error.code(), error.details()) for error in failures]
    for versions in answers.values():
        assert versions[0] == old and versions[-1] == new and versions == sorted(versions)
    # The default version policy (the latest one) unloads the old version once its calls are done.
    deadline = time.monotonic() + 30
    while client.model_status(MODEL_NAME, version=old) != {old: "END"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.model_status(MODEL_NAME, version=old) == {old: "END"}


MODELS_CONFIG = """
model_config_list {{
  config {{ name: "topics_latest_two" base_path: "{base}" model_platform: "tensorflow"
           model_version_policy {{ latest {{ num_versions: 2 }} }} }}
  config {{ name: "topics_all" base_path: "{base}" model_version_policy {{ all {{}} }} }}
  config {{ name: "topics_pinned" base_path: "{base}" model_version_policy {{ specific {{ versions: 1 versions: 3 }} }}
           version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 3 }} }}
}}
"""


@embedded_only
def test_config_file_serves_several_models_with_their_version_policies_and_labels(tmp_path):
    base = tmp_path / "topics"
    for version in (1, 2, 3):
        push(base, version)
    config_file = tmp_path / "models.config"
    config_file.write_text(MODELS_CONFIG.format(base=base))
    with ModelServer(read_model_config(config_file), port=0) as server, ServingClient(server.address) as client:
        assert client.model_status("topics_latest_two") == {3: "AVAILABLE", 2: "AVAILABLE"}
        assert client.model_status("topics_all") == {3: "AVAILABLE", 2: "AVAILABLE", 1: "AVAILABLE"}
        assert client.model_status("topics_pinned") == {3: "AVAILABLE", 1: "AVAILABLE"}
        assert client.predict_response("topics_all", TEXTS, version=2).model_spec.version.value == 2
        for label, version in [("stable", 1), ("canary", 3)]:
            response = client.predict_response("topics_pinned", TEXTS, version_label=label)
            assert response.model_spec.version.value == version
        with pytest.raises(grpc.RpcError) as raised:
            client.predict("topics_pinned", TEXTS, version_label="nope")
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details() == "Unrecognized servable version label: nope"


@embedded_only
def test_server_binds_to_localhost_and_refuses_a_taken_port(model_dir):
    config = single_model_config(MODEL_NAME, model_dir)
    with ModelServer(config, port=0, poll_seconds=60) as server:
        assert server.address == f"127.0.0.1:{server.port}"
        with pytest.raises(RuntimeError, match="Failed to bind"):
            ModelServer(config, port=server.port)


@embedded_only
@pytest.mark.skipif("serve" not in COMMANDS, reason="tfcl.cli.COMMANDS does not list 'serve' yet")
@pytest.mark.parametrize("inherited_sigint", [signal.SIG_DFL, signal.SIG_IGN], ids=["default", "ignored"])
def test_tfcl_serve_answers_until_interrupted(client, model_dir, inherited_sigint):
    """Also when its launcher ignores SIGINT (the child inherits that disposition, and Python then keeps it).

    The launcher is a Python that sets the disposition and execs ``tfcl serve``: a ``preexec_fn`` would fork this
    process, whose gRPC threads make a fork unsafe.
    """
    command = [sys.executable, "-m", "tfcl.cli", "serve", "--model-name", MODEL_NAME, "--model-base-path", model_dir]
    launcher = "import os, signal, sys; signal.signal(signal.SIGINT, signal.Handlers(int(sys.argv[1]))); "
    launcher += "os.execv(sys.executable, sys.argv[2:])"
    server = subprocess.Popen(
        [sys.executable, "-c", launcher, str(int(inherited_sigint)), *map(str, command), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = server.stdout.readline()
        assert banner.startswith(f"Serving {MODEL_NAME} on 127.0.0.1:"), banner
        address = banner.split()[3]
        with ServingClient(address) as cli_client:
            version = max(client.wait_until_available(MODEL_NAME))
            response = cli_client.predict_response(MODEL_NAME, TEXTS)
            assert response.model_spec.version.value == version
            assert response == client.predict_response(MODEL_NAME, TEXTS)
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
