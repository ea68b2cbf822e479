"""The Weibo SavedModel (predict_topics, embed_post, similar_posts, rank_topics) over TF Serving's gRPC API.

By default an embedded server (``tfcl serve``'s) serves the session's export of a tiny untrained CD-TOM
(tests/serving_models.py): what is checked is the serving path, not the model's quality. With
``TFCL_SERVING_ADDRESS=host:port`` and ``TFCL_SERVING_MODEL_BASE`` (the base directory that server's
``weibo_topics`` model lives in, e.g. ``/models`` for ``serving/models.config``) the version is pushed there and the
real server is queried instead.
"""

import os
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_models import WEIBO_K, WEIBO_POSTS, WEIBO_QUERIES, WEIBO_TOPICS, copy_of, publish
from tensorflow_serving.apis import prediction_log_pb2

from tfcl.export import WARMUP_REQUESTS
from tfcl.serving import ModelServer, ServingClient, single_model_config
from tfcl.serving.server import complete_versions
from tfx_pipeline.pipeline import MODEL_NAME

REAL_SERVER = os.environ.get("TFCL_SERVING_ADDRESS")
NEW_TOPICS = ["篮球", "火锅美食", "宇航员", "暴雨预警", "猫咪", "新片上映", "萌宠日常"]  # rank_topics' open vocabulary
SIGNATURE_OUTPUTS = {
    "predict_topics": {"topics", "scores"},
    "serving_default": {"topics", "scores"},
    "similar_posts": {"post_ids", "scores"},
    "embed_post": {"embedding"},
}


@pytest.fixture(scope="module")
def version_dir(weibo_topics_export, tmp_path_factory):
    """The tiny untrained topics model (tests/serving_models.py) pushed as a TF Serving version (written aside, then
    renamed)."""
    if REAL_SERVER:
        if "TFCL_SERVING_MODEL_BASE" not in os.environ:
            pytest.fail("TFCL_SERVING_ADDRESS needs TFCL_SERVING_MODEL_BASE: the base directory that server watches")
        model_dir = Path(os.environ["TFCL_SERVING_MODEL_BASE"]) / MODEL_NAME
    else:
        model_dir = tmp_path_factory.mktemp("models") / MODEL_NAME
    version = max(complete_versions(model_dir), default=0) + 1
    yield publish(model_dir, version, copy_of(weibo_topics_export))
    if REAL_SERVER:
        shutil.rmtree(model_dir / str(version))


@pytest.fixture(scope="module")
def client(version_dir):
    address = REAL_SERVER
    server = None
    if not address:
        server = ModelServer(single_model_config(MODEL_NAME, version_dir.parent), port=0, poll_seconds=0.2).start()
        address = server.address
    with ServingClient(address) as client:
        client.wait_until_available(MODEL_NAME, int(version_dir.name))
        yield client
    if server:
        server.stop()


@pytest.fixture(scope="module")
def in_process(version_dir):
    return tf.saved_model.load(str(version_dir))


@pytest.mark.parametrize("signature_name", sorted(SIGNATURE_OUTPUTS))
def test_grpc_answer_equals_the_saved_model_in_process(client, in_process, version_dir, signature_name):
    response = client.predict_response(
        MODEL_NAME, {"texts": WEIBO_QUERIES}, signature_name=signature_name, version=int(version_dir.name)
    )
    outputs = {alias: tf.make_ndarray(tensor) for alias, tensor in response.outputs.items()}
    expected = in_process.signatures[signature_name](texts=tf.constant(WEIBO_QUERIES))
    assert outputs.keys() == expected.keys() == SIGNATURE_OUTPUTS[signature_name]
    for alias, value in expected.items():
        np.testing.assert_array_equal(outputs[alias], value.numpy())


def test_answers_are_top_k_of_the_vocabulary_and_the_index(client, version_dir):
    version = int(version_dir.name)
    topics = client.predict(MODEL_NAME, {"texts": WEIBO_QUERIES}, signature_name="predict_topics", version=version)
    similar = client.predict(MODEL_NAME, {"texts": WEIBO_QUERIES}, signature_name="similar_posts", version=version)
    embedding = client.predict(MODEL_NAME, {"texts": WEIBO_QUERIES}, signature_name="embed_post", version=version)
    for answer, names in [(topics["topics"], WEIBO_TOPICS), (similar["post_ids"], WEIBO_POSTS)]:
        assert answer.shape == (len(WEIBO_QUERIES), WEIBO_K)
        assert all(len(set(row)) == WEIBO_K and {name.decode() for name in row} <= set(names) for row in answer)
    for scores in (topics["scores"], similar["scores"]):
        assert (np.diff(scores, axis=1) <= 0).all() and (np.abs(scores) <= 1 + 1e-5).all()  # cosines, best first
    np.testing.assert_allclose(np.linalg.norm(embedding["embedding"], axis=1), 1, rtol=1e-5)
    # A post of the index finds itself first.
    post_id, text = next(iter(WEIBO_POSTS.items()))
    itself = client.predict(MODEL_NAME, {"texts": [text]}, signature_name="similar_posts", version=version)
    assert itself["post_ids"][0, 0].decode() == post_id


def test_metadata_describes_the_string_signatures(client, version_dir):
    signature_defs = client.signature_defs(MODEL_NAME, version=int(version_dir.name))
    assert set(SIGNATURE_OUTPUTS) <= signature_defs.keys()
    for name, outputs in SIGNATURE_OUTPUTS.items():
        texts = signature_defs[name].inputs["texts"]
        assert set(signature_defs[name].inputs) == {"texts"}
        assert (texts.dtype, tf.TensorShape(texts.tensor_shape).as_list()) == (tf.string.as_datatype_enum, [None])
        assert set(signature_defs[name].outputs) == outputs


def test_rank_topics_over_grpc_equals_the_saved_model_in_process(client, in_process, version_dir):
    version = int(version_dir.name)
    answer = client.predict(
        MODEL_NAME, {"texts": WEIBO_QUERIES, "topics": NEW_TOPICS}, signature_name="rank_topics", version=version
    )
    expected = in_process.signatures["rank_topics"](texts=tf.constant(WEIBO_QUERIES), topics=tf.constant(NEW_TOPICS))
    assert answer.keys() == expected.keys() == {"scores", "indices", "topics"}
    for alias, value in expected.items():
        np.testing.assert_array_equal(answer[alias], value.numpy())
    assert answer["scores"].shape == (len(WEIBO_QUERIES), len(NEW_TOPICS))
    assert answer["topics"].shape == answer["indices"].shape == (len(WEIBO_QUERIES), WEIBO_K)
    best = np.take_along_axis(answer["scores"], answer["indices"], axis=1)
    assert (np.diff(best, axis=1) <= 0).all() and (best[:, :1] >= answer["scores"].max(axis=1, keepdims=True)).all()
    np.testing.assert_array_equal(answer["topics"], np.array([name.encode() for name in NEW_TOPICS])[answer["indices"]])
    inputs = client.signature_defs(MODEL_NAME, version=version)["rank_topics"].inputs
    assert {name: tf.TensorShape(spec.tensor_shape).as_list() for name, spec in inputs.items()} == {
        "texts": [None],
        "topics": [None],
    }


def test_rank_topics_without_topics_is_an_invalid_argument(client, version_dir):
    with pytest.raises(grpc.RpcError) as raised:
        client.predict(
            MODEL_NAME,
            {"texts": WEIBO_QUERIES, "topics": tf.make_tensor_proto([], tf.string)},
            signature_name="rank_topics",
            version=int(version_dir.name),
        )
    # The embedded server refuses an empty input before the model ("Input 'topics' is an empty batch"); the
    # SavedModel refuses it too ("expects a non-empty list of topic names", tests/apps/test_weibo_apps.py).
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "topics" in raised.value.details()


def test_the_version_warms_up_rank_topics(version_dir):
    requests = [
        prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        for record in tf.data.TFRecordDataset(str(version_dir / WARMUP_REQUESTS)).as_numpy_iterator()
    ]
    rank_topics = [request for request in requests if request.model_spec.signature_name == "rank_topics"]
    assert len(rank_topics) == 1 and set(rank_topics[0].inputs) == {"texts", "topics"}


# (request fields, status code): TF Serving's codes for each kind of bad request.
BAD_REQUESTS = {
    "wrong-dtype": ({"inputs": {"texts": np.ones(2, np.float32)}}, grpc.StatusCode.INVALID_ARGUMENT),
    "missing-input": ({"inputs": {}}, grpc.StatusCode.INVALID_ARGUMENT),
    "empty-batch": ({"inputs": {"texts": tf.make_tensor_proto([], tf.string)}}, grpc.StatusCode.INVALID_ARGUMENT),
    "unknown-model": ({"model_name": "no_such_model"}, grpc.StatusCode.NOT_FOUND),
    "unknown-signature": ({"signature_name": "no_such_signature"}, grpc.StatusCode.FAILED_PRECONDITION),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_gets_its_status(client, case):
    fields, code = BAD_REQUESTS[case]
    request = {
        "model_name": MODEL_NAME,
        "inputs": {"texts": WEIBO_QUERIES},
        "signature_name": "predict_topics",
        **fields,
    }
    with pytest.raises(grpc.RpcError) as raised:
        client.predict(request.pop("model_name"), request.pop("inputs"), **request)
    assert raised.value.code() == code, raised.value.details()
