"""The TFX pipeline end to end on a small generated corpus: push, cache, and anomalies blocking training.

The first run (about 100 s on 2 cores) is in the default suite: it is the acceptance test. The second run (cache)
and the anomalous corpus (about 25 s each) are slow tests.
"""
import collections
import json
import os

import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact_utils

from tfcl.data.weibo_sample import write_sample
from tfcl.serving.server import complete_versions
from tfx_pipeline import components
from tfx_pipeline.pipeline import MODEL_NAME
from tfx_pipeline.runner import latest_output, metadata_store, run_local

standard_artifacts = tfx.types.standard_artifacts

TINY_TRAINER = {"epochs": 2, "batch_size": 32, "num_layers": 1, "num_heads": 2, "hidden_dim": 32,
                "intermediate_dim": 64, "vocabulary_size": 1000, "learning_rate": 1e-3}
# hit@5 by chance is about 5/30 on the generated sample's topics; the tiny CD-TOM made 0.344 (TF-IDF 0.719).
OPTIONS = {"input_pattern": "*.jsonl", "min_topic_count": 3, "threshold": 0.25, "trainer_config": TINY_TRAINER}
POSTS = 300
CACHEABLE_STEPS = ("WeiboExampleGen", "StatisticsGen", "WeiboSchemaGen", "ExampleValidator", "AnomaliesGate",
                   "Trainer")


def execution_states(metadata_path):
    """``{step name: [states of its executions, oldest first]}``, e.g. ``{"Trainer": ["COMPLETE", "CACHED"]}``."""
    store = metadata_store(metadata_path)
    type_names = {execution_type.id: execution_type.name for execution_type in store.get_execution_types()}
    states = collections.defaultdict(list)
    for execution in sorted(store.get_executions(), key=lambda execution: execution.id):
        step = type_names[execution.type_id].rsplit(".", 1)[-1]
        states[step].append(execution.State.Name(execution.last_known_state))
    return states


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    data_root = tmp_path_factory.mktemp("corpus")
    manifest = write_sample(data_root / "posts.jsonl", posts=POSTS)
    return data_root, manifest


@pytest.fixture(scope="module")
def first_run(corpus, tmp_path_factory):
    paths = run_local(str(tmp_path_factory.mktemp("pipeline")), str(corpus[0]), **OPTIONS)
    model_base = os.path.join(paths["serving_model_dir"], MODEL_NAME)
    return {**paths, "model_base": model_base, "versions": sorted(complete_versions(model_base)),
            "states": execution_states(paths["metadata_path"])}


@pytest.fixture(scope="module")
def second_run(first_run, corpus, tmp_path_factory):
    run_local(os.path.dirname(first_run["pipeline_root"]), str(corpus[0]), **OPTIONS)
    return execution_states(first_run["metadata_path"])


def test_pipeline_pushes_a_blessed_model_under_the_serving_base(first_run):
    assert set(first_run["states"]) >= {*CACHEABLE_STEPS, "RetrievalEvaluator", "Pusher"}
    assert all(states == ["COMPLETE"] for states in first_run["states"].values()), first_run["states"]
    assert len(first_run["versions"]) == 1
    version_dir = os.path.join(first_run["model_base"], str(first_run["versions"][0]))

    metadata_path = first_run["metadata_path"]
    model = latest_output(metadata_path, "Trainer", "model", standard_artifacts.Model)
    blessing = latest_output(metadata_path, "RetrievalEvaluator", "blessing", standard_artifacts.ModelBlessing)
    pushed = latest_output(metadata_path, "Pusher", "pushed_model", standard_artifacts.PushedModel)
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_int_custom_property("current_model_id") == model.id
    assert blessing.get_float_custom_property("hit@5") >= OPTIONS["threshold"]
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == version_dir

    saved_model = tf.saved_model.load(version_dir)
    assert set(saved_model.signatures) == {"serving_default", "predict_topics", "embed_post", "similar_posts"}
    vocabulary = components.read_topic_vocabulary(
        latest_output(metadata_path, "WeiboExampleGen", "topic_vocabulary", components.TopicVocabulary))
    answer = saved_model.signatures["predict_topics"](texts=tf.constant(["篮球 投篮 三分 球场"]))
    assert {topic.decode() for topic in answer["topics"].numpy()[0]} <= set(vocabulary)


def test_example_gen_records_counts_dead_letters_and_vocabulary(first_run, corpus):
    metadata_path = first_run["metadata_path"]
    examples = latest_output(metadata_path, "WeiboExampleGen", "examples", standard_artifacts.Examples)
    dead_letters = latest_output(metadata_path, "WeiboExampleGen", "dead_letters", components.WeiboDeadLetters)
    vocabulary = latest_output(metadata_path, "WeiboExampleGen", "topic_vocabulary", components.TopicVocabulary)
    manifest = corpus[1]

    def count(name):
        return examples.get_int_custom_property(components.COUNT_PREFIX + name)

    assert count("read") == manifest["lines"] == count("train") + count("eval") + count("dead_lettered") + count(
        "duplicates")
    assert count("written") == POSTS and count("duplicates") == manifest["duplicates"]
    with open(os.path.join(dead_letters.uri, "dead_letters.jsonl"), encoding="utf-8") as file:
        reasons = collections.Counter(json.loads(line)["reason"] for line in file)
    assert reasons == {reason: n for reason, n in manifest["malformed"].items()}
    for reason, n in reasons.items():
        assert examples.get_int_custom_property(f"{components.COUNT_PREFIX}dead_letter_{reason}") == n
        assert dead_letters.get_int_custom_property(f"{components.COUNT_PREFIX}dead_letter_{reason}") == n
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]

    train_posts = components.split_posts(examples, "train")
    assert len(train_posts) == count("train") and len(components.split_posts(examples, "eval")) == count("eval")
    topic_counts = collections.Counter(topic for post in train_posts for topic in post.topics)
    expected = {topic for topic, n in topic_counts.items() if n >= OPTIONS["min_topic_count"]}
    assert set(components.read_topic_vocabulary(vocabulary)) == expected
    assert vocabulary.get_int_custom_property("topics") == len(expected)


@pytest.mark.parametrize("value, baseline, blessed", [
    (0.8, None, True), (0.3, None, False), (0.8, 0.8, True), (0.8, 0.9, False), (0.3, 0.2, False)])
def test_blessing_needs_the_threshold_and_no_regression_from_the_last_blessed_model(value, baseline, blessed):
    reasons = components.blessing_reasons("hit@5", value, 0.5, baseline)
    assert (not reasons) == blessed
    assert len(reasons) == (value < 0.5) + (baseline is not None and value < baseline)


@pytest.mark.slow
def test_rerun_with_unchanged_inputs_uses_the_cache(first_run, second_run):
    for step in CACHEABLE_STEPS:
        assert second_run[step] == ["COMPLETE", "CACHED"], (step, second_run[step])
    # The evaluator runs again: it now has a baseline, the model the first run blessed (here the same model).
    assert second_run["RetrievalEvaluator"] == ["COMPLETE", "COMPLETE"]
    blessing = latest_output(first_run["metadata_path"], "RetrievalEvaluator", "blessing",
                             standard_artifacts.ModelBlessing)
    assert blessing.get_int_custom_property("baseline_model_id") == blessing.get_int_custom_property(
        "current_model_id")
    assert blessing.get_int_custom_property("blessed") == 1


@pytest.mark.slow
def test_anomalous_corpus_blocks_training(tmp_path):
    data_root = tmp_path / "corpus"
    data_root.mkdir()
    # Well-formed posts, but not one hashtag: no topic to contrast with, which the schema forbids.
    lines = [json.dumps({"id": str(1000 + index), "text": f"今天天气不错，出门散步第{index}天。"}, ensure_ascii=False)
             for index in range(120)]
    (data_root / "posts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(components.AnomaliesFound, match="training is blocked") as raised:
        run_local(str(tmp_path / "pipeline"), str(data_root), **OPTIONS)
    assert "topics" in str(raised.value)
    states = execution_states(str(tmp_path / "pipeline" / "metadata.sqlite"))
    assert states["ExampleValidator"] == ["COMPLETE"] and states["AnomaliesGate"] == ["FAILED"]
    assert "Trainer" not in states and "Pusher" not in states
    assert not complete_versions(tmp_path / "pipeline" / "serving" / MODEL_NAME)
