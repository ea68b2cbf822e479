"""TF Serving's REST API, with a plain HTTP client (urllib): answers equal to gRPC's, statuses, errors.

By default the embedded server runs on free ports. With ``TFCL_SERVING_ADDRESS``, ``TFCL_SERVING_REST_ADDRESS``
(``http://host:port``) and ``TFCL_SERVING_MODEL_BASE``, the versions are pushed to that server's model base and
it is queried instead (serving/README.md); checks of the embedded server's own behaviour are skipped then.
"""

import base64
import os
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format
from serving_models import (
    MODEL_NAME,
    SIGNATURES,
    WEIBO_QUERIES,
    assert_rest_answers_as_grpc,
    copy_of,
    png,
    publish,
    push,
    rest_call,
)

from tfcl.serving import ModelServer, ServingClient, single_model_config
from tfcl.serving.config import complete_versions

REAL_SERVER = os.environ.get("TFCL_SERVING_ADDRESS")
REAL_REST = os.environ.get("TFCL_SERVING_REST_ADDRESS")
embedded_only = pytest.mark.skipif(bool(REAL_SERVER), reason="checks the embedded server, not TF Serving")

TEXTS = np.array(["猫 狗", "足球 电影 音乐", "没有 这些 词"], dtype=object)
EXAMPLES = {
    "serving_default": {"texts": TEXTS},
    "predict_topics": {"texts": TEXTS},
    "score": {"features": np.arange(8, dtype=np.float32).reshape(2, 4) / 3},
    "image_size": {"images": np.array([png(5, 7), png(3, 2)], dtype=object)},
}


def model_base(tmp_path_factory):
    if REAL_SERVER:
        if not (REAL_REST and "TFCL_SERVING_MODEL_BASE" in os.environ):
            pytest.fail("TFCL_SERVING_ADDRESS needs TFCL_SERVING_REST_ADDRESS and TFCL_SERVING_MODEL_BASE")
        return Path(os.environ["TFCL_SERVING_MODEL_BASE"])
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``(REST base URL, gRPC client, version)`` of a server serving a freshly pushed toy model version."""
    model_dir = model_base(tmp_path_factory) / MODEL_NAME
    version = max(complete_versions(model_dir), default=0) + 1
    push(model_dir, version)
    server = None
    if REAL_SERVER:
        address, rest_url = REAL_SERVER, REAL_REST
    else:
        server = ModelServer(single_model_config(MODEL_NAME, model_dir), port=0, rest_api_port=0, poll_seconds=0.1)
        server.start()
        address, rest_url = server.address, server.rest_address
    with ServingClient(address) as client:
        client.wait_until_available(MODEL_NAME, version)
        yield rest_url, client, version
    if server:
        server.stop()


@pytest.mark.parametrize("signature_name", SIGNATURES)
def test_rest_answers_equal_grpc_answers(served, signature_name):
    rest_url, client, version = served
    assert_rest_answers_as_grpc(rest_url, client, MODEL_NAME, signature_name, EXAMPLES[signature_name], version)


def test_status_and_metadata(served):
    rest_url, client, version = served
    status, answer = rest_call(rest_url, f"/v1/models/{MODEL_NAME}/versions/{version}")
    assert status == 200
    assert answer == {
        "model_version_status": [
            {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    status, answer = rest_call(rest_url, f"/v1/models/{MODEL_NAME}/versions/{version}/metadata")
    assert status == 200
    assert answer["model_spec"] == {"name": MODEL_NAME, "signature_name": "", "version": str(version)}
    signature_defs = answer["metadata"]["signature_def"]["signature_def"]
    grpc_signature_defs = client.signature_defs(MODEL_NAME, version=version)
    assert signature_defs.keys() == grpc_signature_defs.keys()
    for name, signature_def in grpc_signature_defs.items():
        assert json_format.ParseDict(signature_defs[name], type(signature_def)()) == signature_def


def test_bytes_outputs_and_inputs_travel_as_b64(served):
    rest_url, _, _ = served
    picture = png(4, 9)
    body = {"signature_name": "image_size", "inputs": {"images": [{"b64": base64.b64encode(picture).decode()}]}}
    assert rest_call(rest_url, f"/v1/models/{MODEL_NAME}:predict", body) == (
        200,
        {"outputs": {"height": [4], "width": [9]}},
    )


# (path, body or None for a GET, HTTP status, part of the error): TF Serving's codes (INVALID_ARGUMENT 400,
# NOT_FOUND 404; an unknown signature is INVALID_ARGUMENT over REST, FAILED_PRECONDITION over gRPC, both 400).
PREDICT = f"/v1/models/{MODEL_NAME}:predict"
BAD_REQUESTS = {
    "unknown-model": ("/v1/models/no_such_model:predict", {"instances": ["猫"]}, 404, "Latest(no_such_model)"),
    "unknown-version": (
        f"/v1/models/{MODEL_NAME}/versions/987654:predict",
        {"instances": ["猫"]},
        404,
        f"Specific({MODEL_NAME}, 987654)",
    ),
    "unknown-status": ("/v1/models/no_such_model", None, 404, "Could not find any versions of model no_such_model"),
    "unknown-label": (f"/v1/models/{MODEL_NAME}/labels/nope:predict", {"instances": ["猫"]}, 400, "label: nope"),
    "unknown-signature": (PREDICT, {"signature_name": "nope", "instances": ["猫"]}, 400, '"nope" not found'),
    "not-json": (PREDICT, b"{", 400, "JSON Parse error"),
    "no-instances": (PREDICT, {"signature_name": "predict_topics"}, 400, "'instances'"),
    "missing-input": (PREDICT, {"inputs": {"other": ["猫"]}}, 400, "Missing but required: {texts}"),
    "wrong-type": (PREDICT, {"signature_name": "score", "inputs": [["a", "b", "c", "d"]]}, 400, "float"),
    "ragged": (PREDICT, {"signature_name": "score", "inputs": [[1, 2, 3, 4], [1]]}, 400, "rectangular"),
    "bad-b64": (PREDICT, {"signature_name": "image_size", "instances": [{"b64": "@@"}]}, 400, "base64"),
    "corrupt-picture": (PREDICT, {"signature_name": "image_size", "instances": [{"b64": "AAAA"}]}, 400, "JPEG"),
    "unknown-path": ("/v1/nothing/here", None, 404, ""),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_gets_tf_servings_http_status_and_an_error(served, case):
    rest_url, _, _ = served
    path, body, http_status, message = BAD_REQUESTS[case]
    status, answer = rest_call(rest_url, path, body)
    assert status == http_status, answer
    assert set(answer) == {"error"} and message in answer["error"]


@embedded_only
def test_empty_text_is_invalid_argument(served):
    """An empty or blank post is refused (INVALID_ARGUMENT, 400) rather than answered with topics for nothing."""
    rest_url, client, _ = served
    for text in ["", "   ", "\u3000"]:
        status, answer = rest_call(rest_url, PREDICT, {"instances": ["猫 狗", text]})
        assert status == 400 and "item 1 is an empty or blank string" in answer["error"], answer


@pytest.fixture(scope="module")
def weibo_topics(tmp_path_factory, weibo_topics_export):
    """The main job's topics model (tiny, untrained), served over gRPC and REST: ``(REST URL, client, version)``."""
    model_dir = model_base(tmp_path_factory) / "weibo_topics"
    version = max(complete_versions(model_dir), default=0) + 1
    publish(model_dir, version, copy_of(weibo_topics_export))
    server = None
    if REAL_SERVER:
        address, rest_url = REAL_SERVER, REAL_REST
    else:
        server = ModelServer(single_model_config("weibo_topics", model_dir), port=0, rest_api_port=0).start()
        address, rest_url = server.address, server.rest_address
    with ServingClient(address, timeout=120) as client:
        client.wait_until_available("weibo_topics", version)
        yield rest_url, client, version
    if server:
        server.stop()


@pytest.mark.parametrize("signature_name", ["serving_default", "predict_topics", "embed_post", "similar_posts"])
def test_weibo_topics_rest_answers_equal_grpc_answers(weibo_topics, signature_name):
    rest_url, client, version = weibo_topics
    inputs = {"texts": np.array(WEIBO_QUERIES, dtype=object)}
    assert_rest_answers_as_grpc(rest_url, client, "weibo_topics", signature_name, inputs, version)
