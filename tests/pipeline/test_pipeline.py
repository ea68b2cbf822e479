"""The TFX pipeline end to end on a small generated corpus: push, cache, and anomalies blocking training.

The first run trains, evaluates and pushes both branches (CD-TOM, and W-CLIP when the sample's emoji / Tux Paint
pictures are fetched) and is in the default suite: it is the acceptance test. Its corpus adds to the generated
sample a few posts whose pictures are local files: a good one, a corrupt one and references that resolve to nothing.
The second run (cache) and the anomalous corpus are slow tests.
"""

import collections
import json
import os
import time

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact_utils

from tfcl.cli import run as run_command
from tfcl.data import DatasetNotFoundError, dataset_dir
from tfcl.data.post_pictures import NOT_FOUND, UNDECODABLE, resolve_pictures
from tfcl.data.weibo_sample import write_sample
from tfcl.recipes.wclip import DEAD_LETTERS_FILE, REPORT_FILE
from tfcl.serving.server import complete_versions
from tfx_pipeline import components
from tfx_pipeline.pipeline import MODEL_NAME, PICTURE_MODEL_NAME, create_pipeline
from tfx_pipeline.runner import latest_output, node_executions, run_local

standard_artifacts = tfx.types.standard_artifacts

TINY_TRAINER = {
    "epochs": 2,
    "batch_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "hidden_dim": 32,
    "intermediate_dim": 64,
    "vocabulary_size": 1000,
    "learning_rate": 1e-3,
}
TINY_WCLIP = {
    "epochs": 2,
    "batch_size": 16,
    "image_size": 16,
    "text_length": 24,
    "num_layers": 1,
    "num_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "projection_dim": 8,
    "vocabulary_size": 500,
    "learning_rate": 1e-3,
    "top_k": 20,
}


def fetched(*names):
    try:
        return all(dataset_dir(name) for name in names)
    except DatasetNotFoundError:
        return False


PICTURES_FETCHED = fetched("emoji", "tuxpaint")  # the sample's picture references resolve in these sets
needs_pictures = pytest.mark.skipif(not PICTURES_FETCHED, reason="needs `tfcl data fetch emoji tuxpaint`")
# hit@5 by chance is about 5/30 on the generated sample's topics; the tiny CD-TOM made 0.344 (TF-IDF 0.719).
# W-CLIP's threshold is 0: any model is blessed, what is checked is the branch's plumbing, not its quality.
OPTIONS = {
    "input_pattern": "*.jsonl",
    "min_topic_count": 3,
    "threshold": 0.25,
    "trainer_config": TINY_TRAINER,
    **({"pictures": {"trainer_config": TINY_WCLIP, "threshold": 0.0}} if PICTURES_FETCHED else {}),
}
POSTS = 300
GOOD_PICTURE, BROKEN_PICTURE = "pictures/ok.png", "pictures/broken.jpg"
UNRESOLVABLE = ("pictures/missing.png", "https://wx1.sinaimg.cn/large/006abc.jpg")
# Posts whose pictures are files next to the exports (paths relative to the data root), good and bad.
PICTURE_POSTS = [
    {"idstr": f"49990000000000{index:02d}", "text": f"#春日赏花# 公园 拍照 心情 第{index}天", "pics": [ref]}
    for index, ref in enumerate([GOOD_PICTURE] * 4 + [BROKEN_PICTURE] * 2 + list(UNRESOLVABLE))
]
CACHEABLE_STEPS = (
    "WeiboExampleGen",
    "StatisticsGen",
    "WeiboSchemaGen",
    "ExampleValidator",
    "AnomaliesGate",
    "Trainer",
    *(("wclip_trainer",) if PICTURES_FETCHED else ()),
)


def execution_states(metadata_path):
    """``{node id: [states of its executions, oldest first]}``, e.g. ``{"Trainer": ["COMPLETE", "CACHED"]}``."""
    return {
        node: [execution.State.Name(execution.last_known_state) for execution in executions]
        for node, executions in node_executions(metadata_path).items()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    data_root = tmp_path_factory.mktemp("corpus")
    manifest = write_sample(data_root / "posts.jsonl", posts=POSTS)
    (data_root / "pictures").mkdir()
    (data_root / GOOD_PICTURE).write_bytes(tf.io.encode_png(np.full((24, 32, 3), 200, np.uint8)).numpy())
    (data_root / BROKEN_PICTURE).write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (data_root / "picture_posts.jsonl").write_text(
        "".join(json.dumps(post, ensure_ascii=False) + "\n" for post in PICTURE_POSTS), encoding="utf-8"
    )
    return data_root, manifest


@pytest.fixture(scope="module")
def first_run(corpus, tmp_path_factory):
    paths = run_local(str(tmp_path_factory.mktemp("pipeline")), str(corpus[0]), **OPTIONS)
    model_base = os.path.join(paths["serving_model_dir"], MODEL_NAME)
    return {
        **paths,
        "model_base": model_base,
        "versions": sorted(complete_versions(model_base)),
        "states": execution_states(paths["metadata_path"]),
    }


@pytest.fixture(scope="module")
def second_run(first_run, corpus, tmp_path_factory):
    run_local(os.path.dirname(first_run["pipeline_root"]), str(corpus[0]), **OPTIONS)
    return execution_states(first_run["metadata_path"])


def test_pipeline_pushes_a_blessed_model_under_the_serving_base(first_run):
    assert set(first_run["states"]) >= {*CACHEABLE_STEPS, "RetrievalEvaluator", "Pusher"}
    if PICTURES_FETCHED:
        assert {"PictureRetrievalEvaluator", "wclip_pusher"} <= set(first_run["states"])
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
    assert set(saved_model.signatures) == {
        "serving_default",
        "predict_topics",
        "embed_post",
        "similar_posts",
        "rank_topics",
    }
    vocabulary = components.read_topic_vocabulary(
        latest_output(metadata_path, "WeiboExampleGen", "topic_vocabulary", components.TopicVocabulary)
    )
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

    assert (
        count("read")
        == manifest["lines"] + len(PICTURE_POSTS)
        == count("train") + count("eval") + count("dead_lettered") + count("duplicates")
    )
    assert count("written") == POSTS + len(PICTURE_POSTS) and count("duplicates") == manifest["duplicates"]
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


@needs_pictures
def test_picture_branch_pushes_a_blessed_wclip_model_that_takes_picture_bytes(first_run, corpus):
    metadata_path, data_root = first_run["metadata_path"], str(corpus[0])
    model = latest_output(metadata_path, "wclip_trainer", "model", standard_artifacts.Model)
    blessing = latest_output(metadata_path, "PictureRetrievalEvaluator", "blessing", standard_artifacts.ModelBlessing)
    pushed = latest_output(metadata_path, "wclip_pusher", "pushed_model", standard_artifacts.PushedModel)
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_int_custom_property("current_model_id") == model.id
    model_base = os.path.join(first_run["serving_model_dir"], PICTURE_MODEL_NAME)
    (version_dir,) = complete_versions(model_base).values()
    assert pushed.get_string_custom_property("pushed_destination") == str(version_dir)

    saved_model = tf.saved_model.load(str(version_dir))
    assert set(saved_model.signatures) == {
        "serving_default",
        "pictures_for_post",
        "posts_for_picture",
        "embed_post",
        "embed_picture",
    }
    examples = latest_output(metadata_path, "WeiboExampleGen", "examples", standard_artifacts.Examples)
    train_posts = components.split_posts(examples, "train")
    usable = {ref for _, ref, _ in resolve_pictures(train_posts, data_root)[0]}
    assert GOOD_PICTURE in usable and BROKEN_PICTURE not in usable  # relative paths resolve next to the exports
    answer = saved_model.signatures["pictures_for_post"](texts=tf.constant(["春日赏花 公园 拍照"]))
    assert {ref.decode() for ref in answer["picture_ids"].numpy()[0]} == usable  # top_k 20 > the index
    pictures = tf.constant([open(os.path.join(data_root, GOOD_PICTURE), "rb").read()])
    posts = saved_model.signatures["posts_for_picture"](pictures=pictures)["post_ids"].numpy()
    assert posts.shape == (1, TINY_WCLIP["top_k"])
    assert {post_id.decode() for post_id in posts[0]} <= {post.id for post in train_posts}
    with pytest.raises(tf.errors.InvalidArgumentError, match="neither JPEG nor PNG"):
        saved_model.signatures["posts_for_picture"](pictures=tf.constant([b"not a picture"]))

    evaluation = latest_output(
        metadata_path, "PictureRetrievalEvaluator", "evaluation", standard_artifacts.ModelEvaluation
    )
    with open(os.path.join(evaluation.uri, "metrics.json"), encoding="utf-8") as file:
        report = json.load(file)
    assert report["model"]["pairs"] >= 1 and report["metric"] == "t2i_recall@5" and report["blessed"]
    assert set(report["chance"]) == {f"{way}_recall@{k}" for way in ("i2t", "t2i") for k in (1, 5, 10)}


@needs_pictures
def test_bad_pictures_are_set_aside_and_counted(first_run):
    metadata_path = first_run["metadata_path"]
    model_run = latest_output(metadata_path, "wclip_trainer", "model_run", standard_artifacts.ModelRun)
    with open(os.path.join(model_run.uri, DEAD_LETTERS_FILE), encoding="utf-8") as file:
        letters = [json.loads(line) for line in file]
    assert collections.Counter((letter["ref"], letter["reason"]) for letter in letters) == {
        (BROKEN_PICTURE, UNDECODABLE): 2,
        (UNRESOLVABLE[0], NOT_FOUND): 1,
        (UNRESOLVABLE[1], NOT_FOUND): 1,
    }
    with open(os.path.join(model_run.uri, REPORT_FILE), encoding="utf-8") as file:
        report = json.load(file)
    set_aside = sum((collections.Counter(counts["set_aside"]) for counts in report.values()), collections.Counter())
    assert set_aside == {UNDECODABLE: 2, NOT_FOUND: 2}
    assert sum(counts["posts"] for counts in report.values()) == POSTS + len(PICTURE_POSTS)
    evaluation = latest_output(
        metadata_path, "PictureRetrievalEvaluator", "evaluation", standard_artifacts.ModelEvaluation
    )
    with open(os.path.join(evaluation.uri, "metrics.json"), encoding="utf-8") as file:
        assert json.load(file)["pictures"] == report["eval"]  # the evaluator counts the eval split alike


@needs_pictures
def test_a_baseline_of_the_other_kind_is_ignored(first_run, tmp_path):
    """As on Kubeflow V2, whose resolver tasks may hand the W-CLIP evaluator the CD-TOM model as its baseline."""
    metadata_path = first_run["metadata_path"]
    wclip_model = latest_output(metadata_path, "wclip_trainer", "model", standard_artifacts.Model)
    cdtom_model = latest_output(metadata_path, "Trainer", "model", standard_artifacts.Model)
    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(tmp_path / "evaluation"), str(tmp_path / "blessing")
    components.judge(
        wclip_model,
        cdtom_model,
        lambda model_dir: {"t2i_recall@5": 0.5},
        evaluation,
        blessing,
        metric="t2i_recall@5",
        threshold=0.4,
        kind_signature="posts_for_picture",
    )
    with open(tmp_path / "evaluation" / "metrics.json", encoding="utf-8") as file:
        report = json.load(file)
    assert report["baseline"] is None and report["baseline_ignored"] == (
        f"model {cdtom_model.id} has no posts_for_picture signature"
    )
    assert blessing.get_int_custom_property("blessed") == 1 and not blessing.has_custom_property("baseline_model_id")


@needs_pictures
def test_one_server_answers_both_models_over_grpc(first_run, corpus, capsys):
    examples = latest_output(first_run["metadata_path"], "WeiboExampleGen", "examples", standard_artifacts.Examples)
    train_posts = components.split_posts(examples, "train")
    model_bases = {
        name: os.path.join(first_run["serving_model_dir"], name) for name in (MODEL_NAME, PICTURE_MODEL_NAME)
    }
    run_command.query_served_models(
        model_bases,
        ["篮球 投篮 三分 球场"],
        components.split_posts(examples, "eval"),
        {post.id: post for post in train_posts},
        str(corpus[0]),
        top=3,
    )
    printed = capsys.readouterr().out
    for text in (
        f"model {MODEL_NAME} version",
        f"model {PICTURE_MODEL_NAME} version",
        "博文预测话题 topics: #",
        "博文配图片 pictures for the post",
        "图片配博文 posts for the picture",
    ):
        assert text in printed, printed
    answers = printed.split("图片配博文 posts for the picture:")[1].splitlines()[1:4]
    assert len(answers) == 3 and all(line.split()[1] in {post.id for post in train_posts} for line in answers)


def test_each_resolver_reads_only_its_own_trainers_models(tmp_path):
    from tfx.dsl.compiler.compiler import Compiler

    pipeline = create_pipeline(
        "p",
        str(tmp_path / "root"),
        str(tmp_path / "data"),
        str(tmp_path / "serving"),
        str(tmp_path / "m.sqlite"),
        pictures={},
    )
    model_sources = {}  # resolver → the node contexts its Model channels are restricted to
    for node in Compiler().compile(pipeline).nodes:
        resolver = node.pipeline_node
        if resolver.node_info.id.startswith("latest_blessed"):
            model_sources[resolver.node_info.id] = {
                query.name.field_value.string_value
                for spec in resolver.inputs.inputs.values()
                for channel in spec.channels
                if channel.artifact_query.type.name == standard_artifacts.Model.TYPE_NAME
                for query in channel.context_queries
                if query.type.name == "node"
            }
    assert model_sources == {
        "latest_blessed_model_resolver": {"p.Trainer"},
        "latest_blessed_wclip_resolver": {"p.wclip_trainer"},
    }


@pytest.mark.parametrize(
    "value, baseline, blessed",
    [(0.8, None, True), (0.3, None, False), (0.8, 0.8, True), (0.8, 0.9, False), (0.3, 0.2, False)],
)
def test_blessing_needs_the_threshold_and_no_regression_from_the_last_blessed_model(value, baseline, blessed):
    reasons = components.blessing_reasons("hit@5", value, 0.5, baseline)
    assert (not reasons) == blessed
    assert len(reasons) == (value < 0.5) + (baseline is not None and value < baseline)


@pytest.mark.slow
def test_rerun_with_unchanged_inputs_uses_the_cache(first_run, second_run):
    for step in CACHEABLE_STEPS:
        assert second_run[step] == ["COMPLETE", "CACHED"], (step, second_run[step])
    # The evaluators run again: each now has a baseline, the model the first run blessed (here the same model), its
    # own trainer's and not the other branch's.
    branches = [("Trainer", "RetrievalEvaluator")] + [("wclip_trainer", "PictureRetrievalEvaluator")] * PICTURES_FETCHED
    for trainer, evaluator in branches:
        model = latest_output(first_run["metadata_path"], trainer, "model", standard_artifacts.Model)
        blessing = latest_output(first_run["metadata_path"], evaluator, "blessing", standard_artifacts.ModelBlessing)
        assert second_run[evaluator] == ["COMPLETE", "COMPLETE"]
        assert blessing.get_int_custom_property("baseline_model_id") == model.id
        assert blessing.get_int_custom_property("current_model_id") == model.id
        assert blessing.get_int_custom_property("blessed") == 1
    # The model is the one pushed already: no second, identical version.
    assert sorted(complete_versions(first_run["model_base"])) == first_run["versions"]


@pytest.mark.slow
def test_anomalous_corpus_blocks_training(tmp_path):
    data_root = tmp_path / "corpus"
    data_root.mkdir()
    # Well-formed posts, but not one hashtag: no topic to contrast with, which the schema forbids.
    lines = [
        json.dumps({"id": str(1000 + index), "text": f"今天天气不错，出门散步第{index}天。"}, ensure_ascii=False)
        for index in range(120)
    ]
    (data_root / "posts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(components.AnomaliesFound, match="training is blocked") as raised:
        run_local(str(tmp_path / "pipeline"), str(data_root), **OPTIONS)
    assert "topics" in str(raised.value)
    states = execution_states(str(tmp_path / "pipeline" / "metadata.sqlite"))
    assert states["ExampleValidator"] == ["COMPLETE"] and states["AnomaliesGate"] == ["FAILED"]
    assert not {"Trainer", "wclip_trainer", "Pusher", "wclip_pusher"} & set(states)
    assert not complete_versions(tmp_path / "pipeline" / "serving" / MODEL_NAME)


def test_too_few_train_posts_or_topics_are_named_with_what_the_ingestion_did():
    counts = {
        "read": 3,
        "train": 0,
        "eval": 0,
        "written": 0,
        "dead_lettered": 3,
        "duplicates": 0,
        "dead_letter_reasons": {"bad_json": 2, "no_text": 1, "oversize": 0},
    }
    reasons = components.training_data_shortfalls(counts, topics=0, min_examples=10, min_topics=2)
    assert reasons == [
        "the train split has 0 posts, fewer than 10: of 3 records read, 3 were dead-lettered (bad_json 2, no_text 1) "
        "and 0 were duplicates",
        "the topic vocabulary has 0 topics, fewer than 2",
    ]
    assert not components.training_data_shortfalls({**counts, "train": 10}, topics=2, min_examples=10, min_topics=2)


def _push(model_dir, serving_base, work_dir):
    """Run the pipeline's Pusher executor once on a blessed ``model_dir``; returns its ``pushed_model`` artifact."""
    from tfx.dsl.components.base import base_executor
    from tfx.proto import pusher_pb2
    from tfx.utils import proto_utils

    model, blessing, pushed = (
        standard_artifacts.Model(),
        standard_artifacts.ModelBlessing(),
        standard_artifacts.PushedModel(),
    )
    model.uri = str(model_dir)
    blessing.uri, pushed.uri = str(work_dir / "blessing"), str(work_dir / "pushed")
    blessing.set_int_custom_property("blessed", 1)
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving_base))
    )
    components.ChangedModelPusherExecutor(base_executor.BaseExecutor.Context(tmp_dir=str(work_dir))).Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    return pushed


def test_an_unchanged_model_is_not_pushed_again_and_a_changed_one_is(tmp_path):
    model_dir = tmp_path / "model"
    serving = model_dir / "Format-Serving"  # where a Trainer's Model artifact keeps the SavedModel
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(b"graph")
    (serving / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights")
    base = tmp_path / "serving" / MODEL_NAME
    first = _push(model_dir, base, tmp_path / "run1")
    assert first.get_int_custom_property("pushed") == 1
    versions = sorted(os.listdir(base))
    second = _push(model_dir, base, tmp_path / "run2")  # a re-run: the cached Trainer's model, blessed again
    assert second.get_int_custom_property("pushed") == 0
    assert second.get_string_custom_property("unchanged_version") == versions[-1]
    assert sorted(os.listdir(base)) == versions
    (serving / "variables" / "variables.data-00000-of-00001").write_bytes(b"other weights")
    time.sleep(1.1)  # versions are Unix seconds
    third = _push(model_dir, base, tmp_path / "run3")
    assert third.get_int_custom_property("pushed") == 1 and len(os.listdir(base)) == 2


@pytest.mark.slow
def test_a_corpus_of_rejected_records_stops_before_training_with_one_line(tmp_path, capsys):
    from tfcl import cli

    data_root = tmp_path / "corpus"
    data_root.mkdir()
    (data_root / "allbad.jsonl").write_text("{not json\n" * 30 + '{"idstr": "1", "text": ""}\n', encoding="utf-8")
    status = cli.main(
        ["run", "--input", str(data_root / "allbad.jsonl"), "--work-dir", str(tmp_path / "work"), "--no-pictures"]
    )
    errors = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(errors) == 1
    assert "too little to train on" in errors[0] and "bad_json 30, no_text 1" in errors[0]
    states = execution_states(str(tmp_path / "work" / "metadata.sqlite"))
    assert states["AnomaliesGate"] == ["FAILED"] and "Trainer" not in states and "Pusher" not in states
