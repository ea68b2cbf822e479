"""博文配图片 / 图片配博文: the W-CLIP SavedModel in process and over TF Serving's gRPC API (the embedded server).

What is checked is the serving path of a freshly built, untrained tiny W-CLIP (CLIP negatives): picture bytes in,
the same embeddings as the Keras model, top-k of the exported indexes, bad input refused with INVALID_ARGUMENT.
"""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_models import assert_rest_answers_as_grpc

from tfcl.apps.pictures import export_picture_model
from tfcl.recipes.wclip import build_wclip
from tfcl.registry import wclip_recipe
from tfcl.serving import ModelServer, ServingClient, single_model_config
from tfcl.text.tokenizer import BERT_SPECIAL_TOKENS, WEIBO_TOKENS

MODEL_NAME = "weibo_pictures"
COLOURS = {
    "red": (230, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 230),
    "yellow": (240, 220, 20),
    "white": (250, 250, 250),
}
POSTS = {
    f"44810000000000{index:02d}": text
    for index, text in enumerate(
        ["红色的苹果 好吃", "绿色的树叶 春天", "蓝色的大海 旅行", "黄色的香蕉 水果", "白色的雪 冬天", "今天 天气 真好"]
    )
}
QUERIES = ["红色的花", "去海边 旅行"]
K = 3
SIZE = 16


def picture(rgb, encode=tf.io.encode_png):
    return encode(np.full((12, 20, 3), rgb, np.uint8)).numpy()


PICTURES = {name: picture(rgb) for name, rgb in COLOURS.items()}
QUERY_PICTURES = [picture((200, 40, 40)), picture((40, 40, 200), tf.io.encode_jpeg)]


@pytest.fixture(scope="module")
def model():
    vocabulary = [*BERT_SPECIAL_TOKENS, *WEIBO_TOKENS, *sorted(set("".join([*POSTS.values(), *QUERIES])))]
    return build_wclip(
        wclip_recipe("in_batch"),
        vocabulary,
        image_size=SIZE,
        text_length=12,
        num_layers=1,
        hidden_dim=16,
        intermediate_dim=32,
        projection_dim=8,
    )


@pytest.fixture(scope="module")
def version_dir(model, tmp_path_factory):
    version = tmp_path_factory.mktemp("models") / MODEL_NAME / "1"
    export_picture_model(
        model, list(PICTURES), list(PICTURES.values()), list(POSTS), list(POSTS.values()), str(version), k=K
    )
    return version


@pytest.fixture(scope="module")
def in_process(version_dir):
    return tf.saved_model.load(str(version_dir))


@pytest.fixture(scope="module")
def server(version_dir):
    config = single_model_config(MODEL_NAME, version_dir.parent)
    server = ModelServer(config, port=0, rest_api_port=0, poll_seconds=0.2).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server):
    with ServingClient(server.address, timeout=300) as client:  # first calls trace; slow on a busy machine
        client.wait_until_available(MODEL_NAME, 1)
        yield client


def test_saved_model_takes_picture_bytes_and_embeds_as_the_keras_model(model, in_process):
    pictures = tf.constant(QUERY_PICTURES)
    np.testing.assert_allclose(
        in_process.signatures["embed_picture"](pictures=pictures)["embedding"].numpy(),
        model.embed_images(pictures).numpy(),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        in_process.signatures["embed_post"](texts=tf.constant(QUERIES))["embedding"].numpy(),
        model.embed_texts(tf.constant(QUERIES)).numpy(),
        atol=1e-5,
    )
    # The index travels inside: scores are the Keras model's cosines against the index pictures.
    answer = in_process.signatures["pictures_for_post"](texts=tf.constant(QUERIES))
    cosines = (
        model.embed_texts(tf.constant(QUERIES)).numpy()
        @ model.embed_images(tf.constant(list(PICTURES.values()))).numpy().T
    )
    np.testing.assert_allclose(answer["scores"].numpy(), -np.sort(-cosines, axis=1)[:, :K], atol=1e-5)
    names = np.array(list(PICTURES))[np.argsort(-cosines, axis=1)[:, :K]]
    np.testing.assert_array_equal(answer["picture_ids"].numpy().astype(str), names)


def test_grpc_picture_bytes_get_posts_and_a_post_gets_pictures(client, in_process):
    posts = client.predict(
        MODEL_NAME, {"pictures": np.array(QUERY_PICTURES, dtype=object)}, signature_name="posts_for_picture"
    )
    pictures = client.predict(MODEL_NAME, {"texts": QUERIES}, signature_name="pictures_for_post")
    default = client.predict(MODEL_NAME, {"texts": QUERIES})
    for answer, key, names in ((posts, "post_ids", POSTS), (pictures, "picture_ids", PICTURES)):
        assert answer[key].shape == answer["scores"].shape == (2, K)
        assert all(len(set(row)) == K and {name.decode() for name in row} <= set(names) for row in answer[key])
        assert (np.diff(answer["scores"], axis=1) <= 0).all() and (np.abs(answer["scores"]) <= 1 + 1e-5).all()
    np.testing.assert_array_equal(default["picture_ids"], pictures["picture_ids"])
    expected = in_process.signatures["posts_for_picture"](pictures=tf.constant(QUERY_PICTURES))
    np.testing.assert_array_equal(posts["post_ids"], expected["post_ids"].numpy())
    np.testing.assert_allclose(posts["scores"], expected["scores"].numpy(), atol=1e-6)
    signature_defs = client.signature_defs(MODEL_NAME, version=1)
    assert set(signature_defs["posts_for_picture"].inputs) == {"pictures"}
    assert set(signature_defs["pictures_for_post"].outputs) == {"picture_ids", "scores"}


BAD_REQUESTS = {  # (signature, inputs, text the error must contain)
    "corrupt-picture": (
        "posts_for_picture",
        {"pictures": np.array([b"not a picture"], dtype=object)},
        "neither JPEG nor PNG",
    ),
    "one-corrupt-in-a-batch": (
        "embed_picture",
        {"pictures": np.array([QUERY_PICTURES[0], b"GIF89a"], dtype=object)},
        "neither JPEG nor PNG",
    ),
    "truncated-png": (
        "posts_for_picture",
        {"pictures": np.array([QUERY_PICTURES[0][:30]], dtype=object)},
        "neither JPEG nor PNG, or are truncated or corrupt",
    ),
    "truncated-jpeg": (
        "embed_picture",
        {"pictures": np.array([QUERY_PICTURES[1][: len(QUERY_PICTURES[1]) // 2]], dtype=object)},
        "neither JPEG nor PNG, or are truncated or corrupt",
    ),
    "empty-batch": ("posts_for_picture", {"pictures": tf.make_tensor_proto([], tf.string)}, "empty batch"),
    "wrong-dtype": ("pictures_for_post", {"texts": np.ones(2, np.float32)}, ""),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_input_gets_invalid_argument(client, case):
    signature, inputs, message = BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as raised:
        client.predict(MODEL_NAME, inputs, signature_name=signature)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert message in raised.value.details()
    assert "{{node" not in raised.value.details()  # the documented message, not TensorFlow's graph internals
    # The server still answers afterwards.
    assert client.predict(MODEL_NAME, {"texts": QUERIES})["picture_ids"].shape == (2, K)


REST_EXAMPLES = {
    "embed_picture": {"pictures": np.array(QUERY_PICTURES, dtype=object)},
    "posts_for_picture": {"pictures": np.array(QUERY_PICTURES, dtype=object)},
    "pictures_for_post": {"texts": np.array(QUERIES, dtype=object)},
    "embed_post": {"texts": np.array(QUERIES, dtype=object)},
    "serving_default": {"texts": np.array(QUERIES, dtype=object)},
}


def test_rest_answers_equal_grpc_for_every_signature_pictures_as_b64(server, client):
    assert set(REST_EXAMPLES) == set(client.signature_defs(MODEL_NAME, version=1)) - {"__saved_model_init_op"}
    for signature_name, inputs in REST_EXAMPLES.items():
        assert_rest_answers_as_grpc(server.rest_address, client, MODEL_NAME, signature_name, inputs, version=1)
