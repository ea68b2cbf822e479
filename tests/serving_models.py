"""A tiny servable model and a pusher, shared by the serving tests."""

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

MODEL_NAME = "tfcl_toy"
WORDS = ["猫", "狗", "足球", "电影", "音乐"]
TOPICS = ["pets", "sports", "film"]
SIGNATURES = ("serving_default", "predict_topics", "score", "image_size")


class ToyModel(tf.Module):
    """Signatures over a constant word → topic-score table, a dense kernel and an image decoder.

    ``seed`` draws the table and the kernel, so versions pushed with different seeds answer differently.
    """

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.word_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(WORDS, tf.range(len(WORDS), dtype=tf.int64)), default_value=len(WORDS)
        )
        # One row per word, and a last one for unknown words.
        self.word_topic_scores = tf.constant(rng.normal(size=(len(WORDS) + 1, len(TOPICS))), tf.float32)
        self.topics = tf.constant(TOPICS)
        self.kernel = tf.Variable(rng.normal(size=(4, 3)), dtype=tf.float32)

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


def save_toy_model(path, seed):
    model = ToyModel(seed)
    signatures = {"serving_default": model.predict_topics, "predict_topics": model.predict_topics}
    signatures.update(score=model.score, image_size=model.image_size)
    tf.saved_model.save(model, str(path), signatures=signatures)


def push(model_dir, version, seed=None):
    """Publish ``version`` as a pusher does: write it into a temporary directory beside it, then rename that."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".incoming-{version}-", dir=model_dir))
    save_toy_model(staging, version if seed is None else seed)
    return staging.rename(model_dir / str(version))


def png(height, width):
    return tf.io.encode_png(np.zeros((height, width, 3), np.uint8)).numpy()
