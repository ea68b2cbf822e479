"""A tiny servable model, a pusher and REST helpers, shared by the serving tests."""

import base64
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfcl.export import write_warmup_requests

MODEL_NAME = "tfcl_toy"
WORDS = ["猫", "狗", "足球", "电影", "音乐"]
TOPICS = ["pets", "sports", "film"]
SIGNATURES = ("serving_default", "predict_topics", "score", "image_size")


class ToyModel(tf.Module):
    """Signatures over a constant word → topic-score table, a dense kernel and an image decoder.

    ``seed`` draws the table and the kernel, so versions pushed with different seeds answer differently.
    ``ballast_mb``: a variable of that size, to see a version's memory; ``spin`` runs a loop of ``max(steps)``
    iterations, to hold a call in flight.
    """

    def __init__(self, seed, ballast_mb=0):
        rng = np.random.default_rng(seed)
        self.word_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(WORDS, tf.range(len(WORDS), dtype=tf.int64)), default_value=len(WORDS)
        )
        # One row per word, and a last one for unknown words.
        self.word_topic_scores = tf.constant(rng.normal(size=(len(WORDS) + 1, len(TOPICS))), tf.float32)
        self.topics = tf.constant(TOPICS)
        self.kernel = tf.Variable(rng.normal(size=(4, 3)), dtype=tf.float32)
        self.ballast = tf.Variable(tf.random.stateless_uniform([ballast_mb << 18], seed=[seed, 0]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def predict_topics(self, texts):
        word_ids = self.word_ids.lookup(tf.strings.split(texts))
        scores = tf.reduce_mean(tf.gather(self.word_topic_scores, word_ids), axis=1)
        top = tf.math.top_k(scores, k=2)
        return {"topics": tf.gather(self.topics, top.indices), "scores": top.values}

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def score(self, features):
        return {"logits": tf.matmul(features, self.kernel)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def image_size(self, images):
        def decoded_size(image):
            return tf.shape(tf.io.decode_image(image, channels=3, expand_animations=False))[:2]

        sizes = tf.map_fn(decoded_size, images, fn_output_signature=tf.int32)
        return {"height": sizes[:, 0], "width": sizes[:, 1]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
    def spin(self, steps):
        def step(index, value):
            return index + 1, tf.sin(value) + 1.0

        start = (tf.constant(0, tf.int64), tf.constant(0.0))
        _, value = tf.while_loop(lambda index, _: index < tf.reduce_max(steps), step, start)
        return {"value": tf.fill(tf.shape(steps), value)}


def save_toy_model(path, seed, warmup=True, ballast_mb=0):
    model = ToyModel(seed, ballast_mb)
    signatures = {"serving_default": model.predict_topics, "predict_topics": model.predict_topics}
    signatures.update(score=model.score, image_size=model.image_size, spin=model.spin)
    tf.saved_model.save(model, str(path), signatures=signatures)
    if warmup:
        write_warmup_requests(path)


def push(model_dir, version, seed=None, **options):
    """Publish a toy ``version`` as a pusher does (see :func:`publish`); ``options`` go to :func:`save_toy_model`."""
    return publish(model_dir, version, lambda path: save_toy_model(path, version if seed is None else seed, **options))


def png(height, width):
    return tf.io.encode_png(np.zeros((height, width, 3), np.uint8)).numpy()


def json_value(array):
    """A numpy input as TF Serving's REST API takes it: UTF-8 strings as JSON strings, other bytes as {"b64": ...}."""

    def leaf(item):
        if isinstance(item, bytes):
            try:
                return item.decode()
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(item).decode()}
        return item.item() if isinstance(item, np.generic) else item

    array = np.asarray(array)
    return np.vectorize(leaf, otypes=[object])(array).tolist() if array.dtype == object else array.tolist()


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback calls, whatever http_proxy says


def rest_call(base_url, path, body=None, timeout=60):
    """``(HTTP status, JSON answer)`` of a GET (``body`` None) or a POST of ``body`` (as JSON; bytes as they are)."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{base_url}{path}", data=data, method="GET" if body is None else "POST")
    try:
        with NO_PROXY.open(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def rest_outputs(values, dtype):
    """A REST output as the array gRPC answers: strings back to bytes ({"b64"} decoded), numbers in ``dtype``."""

    def leaf(item):
        if isinstance(item, dict):
            return base64.b64decode(item["b64"])
        return item.encode() if isinstance(item, str) else item

    if np.dtype(dtype).kind == "O":
        return np.vectorize(leaf, otypes=[object])(np.asarray(values, dtype=object))
    return np.asarray(values, dtype=dtype)


def assert_rest_answers_as_grpc(rest_url, grpc_client, model_name, signature_name, inputs, version=None):
    """POST the ``inputs`` in the row and the columnar format; each answer must equal gRPC's, value for value."""
    expected = grpc_client.predict(model_name, inputs, signature_name=signature_name, version=version)
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version else "") + ":predict"
    columns = {alias: json_value(value) for alias, value in inputs.items()}
    rows = len(next(iter(columns.values())))
    instances = [{alias: column[index] for alias, column in columns.items()} for index in range(rows)]
    for body, key in [({"instances": instances}, "predictions"), ({"inputs": columns}, "outputs")]:
        status, answer = rest_call(rest_url, path, {"signature_name": signature_name, **body})
        assert status == 200, answer
        values = answer[key]
        if key == "predictions":
            values = {alias: [row[alias] for row in values] for alias in expected} if len(expected) > 1 else values
        if len(expected) == 1:
            values = {next(iter(expected)): values}
        assert values.keys() == expected.keys()
        for alias, value in expected.items():
            np.testing.assert_array_equal(rest_outputs(values[alias], value.dtype), value)


# A tiny Weibo corpus for the main job's topics model, built small and untrained: what the serving tests check is
# the serving path, not the model's quality.
WEIBO_TOPICS = ["篮球比赛", "美食探店", "萌宠日常", "航天探索", "天气预报", "电影推荐"]
WEIBO_POSTS = {
    f"44800000000000{index:02d}": text
    for index, text in enumerate(
        [
            "投篮 三分 球场 比分",
            "火锅 麻辣 排队 小吃",
            "猫咪 狗狗 撒娇 遛狗",
            "火箭 发射 卫星 空间站",
            "降温 暴雨 大风 气温",
            "电影 票房 导演 演员",
            "篮板 助攻 扣篮 球队",
            "甜品 招牌 口味 餐厅",
            "铲屎官 猫粮 毛孩子 打呼",
            "宇航员 月球 火星 轨道",
            "寒潮 雾霾 晴天 预警",
            "剧情 上映 预告片 影院",
        ]
    )
}
WEIBO_QUERIES = ["今天的篮球比赛，三分球太准了", "这家火锅店排队两小时", "[哈哈]"]
WEIBO_K = 5  # topics and similar posts each answer returns


def export_weibo_topics(path):
    """The main job's ``weibo_topics`` SavedModel (a tiny untrained CD-TOM) written to ``path``.

    Exporting takes tens of seconds on a busy machine: tests publish the session's one export with
    :func:`copy_of` (the ``weibo_topics_export`` fixture of tests/conftest.py).
    """
    from tfcl.apps.weibo import export_weibo_model
    from tfcl.recipes.cdtom import build_cdtom
    from tfcl.text import learn_vocabulary

    vocabulary = learn_vocabulary(list(WEIBO_POSTS.values()) + WEIBO_TOPICS + WEIBO_QUERIES, 200)
    model = build_cdtom(
        vocabulary,
        num_layers=1,
        hidden_dim=16,
        intermediate_dim=32,
        projection_dim=16,
        document_length=16,
        topic_length=8,
    )
    return export_weibo_model(model, WEIBO_TOPICS, list(WEIBO_POSTS), list(WEIBO_POSTS.values()), str(path), k=WEIBO_K)


def copy_of(export_dir):
    """An ``export`` for :func:`publish` that copies the SavedModel already exported to ``export_dir``."""
    return lambda path: shutil.copytree(export_dir, path, dirs_exist_ok=True)


def publish(model_dir, version, export):
    """Publish ``export(path)`` as ``model_dir/version``, written aside and renamed into place as a pusher does."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".incoming-{version}-", dir=model_dir))
    export(staging)
    return staging.rename(model_dir / str(version))
