"""The Trainer's module file: ``run_fn`` trains CD-TOM on the ExampleGen's TFRecords and exports the Weibo SavedModel.

``fn_args.custom_config`` (all optional):

* ``strategy`` (``default`` | ``mirrored`` | ``multi_worker`` | ``tpu``) and ``tpu`` (its name or address);
* ``min_topic_count``: the ExampleGen's, so that the vocabulary rebuilt here from the train split is the one it wrote;
* ``top_k`` (answers per query) and ``topic_index`` (the keys of ``predict_topics``, see
  :func:`tfcl.apps.weibo.topic_keys`; built from the posts CD-TOM trained on);
* ``epochs``, ``batch_size``, ``steps_per_epoch`` and any other keyword of
  :func:`tfcl.recipes.cdtom.train_cdtom` (model size, learning rate, ...); batch size, learning rate and weight
  decay default to the ``cdtom`` entry of :mod:`tfcl.registry`.

The Trainer's standard inputs cannot carry the ExampleGen's ``topic_vocabulary`` artifact, so the vocabulary is
rebuilt from the train split with the ingestion's own :func:`tfcl.data.weibo_ingest.topic_tables` and the same
minimum count. TensorBoard logs go to ``fn_args.model_run_dir/logs``; the SavedModel (signatures
``predict_topics``, ``embed_post``, ``similar_posts``; the vocabulary and an index of the train posts inside) to
``fn_args.serving_model_dir``.
"""

from __future__ import annotations

import collections
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from tfcl.apps.weibo import TOPIC_INDEX, export_cdtom
from tfcl.data import weibo_ingest
from tfcl.data.weibo import WeiboPost
from tfcl.recipes.cdtom import MAX_TOPICS_PER_POST, train_cdtom
from tfcl.registry import get_recipe
from tfcl.strategy import is_chief, make_strategy, task_out_dir
from tfx_pipeline.components import read_posts

DEFAULTS = {"strategy": "default", "tpu": None, "min_topic_count": 5, "top_k": 10, "topic_index": TOPIC_INDEX}
VERTEX_KEY_PREFIX = "ai_platform_"  # custom_config keys TFX's Vertex AI Trainer reads (tfx_pipeline.pipeline)


def training_config(custom_config: dict | None, defaults: dict) -> dict:
    """``defaults`` updated with the Trainer's ``custom_config``, less the keys of TFX's Vertex AI Trainer."""
    config = {**defaults, **(custom_config or {})}
    return {key: value for key, value in config.items() if not key.startswith(VERTEX_KEY_PREFIX)}


def write_topic_vocabulary(posts: Sequence[WeiboPost], min_count: int, path: str) -> list[str]:
    """Write the ``topic_vocab.tsv`` the ingestion writes for these train posts; returns its topics."""
    counts = collections.Counter(topic for post in posts for topic in post.topics)
    _, vocabulary = weibo_ingest.topic_tables([(topic, (n, 0)) for topic, n in counts.items()], min_count)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as file:
        file.write(vocabulary)
    return [line.split("\t")[0] for line in vocabulary.splitlines()]


def run_fn(fn_args: Any) -> None:
    """Train CD-TOM under the configured strategy and export the serving SavedModel."""
    recipe = get_recipe("cdtom")
    defaults = {
        "batch_size": recipe.batch_size,
        "learning_rate": recipe.learning_rate,
        "weight_decay": recipe.weight_decay,
    }
    config = training_config(fn_args.custom_config, {**DEFAULTS, **defaults})
    strategy = make_strategy(config.pop("strategy"), config.pop("tpu"))
    min_topic_count, top_k, topic_index = (config.pop(key) for key in ("min_topic_count", "top_k", "topic_index"))
    train_files = sorted(file for pattern in fn_args.train_files for file in tf.io.gfile.glob(pattern))
    eval_files = sorted(file for pattern in fn_args.eval_files for file in tf.io.gfile.glob(pattern))
    train_posts = read_posts(train_files)
    vocabulary_file = os.path.join(fn_args.model_run_dir, weibo_ingest.TOPIC_VOCAB_FILE)
    topics = write_topic_vocabulary(train_posts, min_topic_count, vocabulary_file)
    with task_out_dir(fn_args.model_run_dir, strategy) as run_dir:
        model, _ = train_cdtom(
            train_files, eval_files, vocabulary_file, run_dir, strategy=strategy, verbose=2, **config
        )
    export_on_chief(
        strategy,
        fn_args.serving_model_dir,
        lambda path: export_cdtom(
            model, train_posts, topics, path, topic_index, top_k, config.get("max_topics_per_post", MAX_TOPICS_PER_POST)
        ),
    )


def export_on_chief(
    strategy: tf.distribute.Strategy, serving_model_dir: str, export: Callable[[str], object], timeout: float = 600.0
) -> None:
    """``export(path)`` into ``serving_model_dir``. Under multi-worker training every task saves (saving is
    collective): the other tasks export to a temporary directory, delete it, then wait up to ``timeout`` seconds
    for the chief's export (TFX's Trainer fails a task whose ``serving_model_dir`` does not exist)."""
    if is_chief(strategy):
        export(serving_model_dir)
        return
    export_dir = tempfile.mkdtemp(prefix="tfcl-export-")
    export(export_dir)
    tf.io.gfile.rmtree(export_dir)
    deadline = time.monotonic() + timeout
    while not tf.io.gfile.exists(serving_model_dir):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the chief wrote no model to {serving_model_dir} within {timeout:.0f} s")
        time.sleep(1)
