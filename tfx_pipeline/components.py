"""The pipeline's own components: the Weibo ExampleGen, its schema, the anomalies gate and the retrieval evaluators.

* :class:`WeiboExampleGen` is a ``FileBasedExampleGen`` (TFX's driver resolves spans and fingerprints the input
  files, so an unchanged input hits the cache, locally and on Kubeflow) whose executor runs the Beam job of
  ``tfcl ingest weibo`` (:func:`tfcl.data.weibo_ingest.build_ingestion`) and writes, besides the train/eval
  ``Examples``, the dead letters and duplicates and the topic vocabulary as artifacts of their own. The
  ingestion's counts are custom properties of the ``Examples`` and dead-letter artifacts.
* :func:`WeiboSchemaGen` writes the curated schema ExampleValidator checks the statistics against.
* :func:`AnomaliesGate` fails when ExampleValidator found anomalies or the ingestion left too few train posts or
  topics, so nothing downstream of it runs.
* :class:`ChangedModelPusherExecutor` is the Pusher's executor: it does not push a model identical to the newest
  version already pushed.
* :func:`RetrievalEvaluator` scores the exported model's signatures on the eval split with
  :mod:`tfcl.eval.retrieval` and writes a ``ModelBlessing`` the standard Pusher and ``LatestBlessedModelStrategy``
  read: blessed when the metric clears the threshold and is not below the last blessed model's on the same split.
* :func:`PictureRetrievalEvaluator` does the same for W-CLIP: post → pictures and picture → posts retrieval on the
  eval split's (post, picture) pairs (:mod:`tfcl.data.post_pictures`). Both decide and write with :func:`judge`.
"""

import hashlib
import json
import logging
import os

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx import types
from tfx import v1 as tfx
from tfx.components.example_gen import write_split
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.pusher import executor as pusher_executor
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.proto import example_gen_pb2, pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils, proto_utils

from tfcl.data import post_pictures, weibo, weibo_ingest
from tfcl.eval import retrieval
from tfcl.eval.batches import predict_in_batches
from tfcl.eval.image_text import chance_metrics, evaluate_picture_model

InputArtifact = tfx.dsl.components.InputArtifact
OutputArtifact = tfx.dsl.components.OutputArtifact
Parameter = tfx.dsl.components.Parameter
standard_artifacts = tfx.types.standard_artifacts

SPLITS = weibo_ingest.SPLITS  # ("train", "eval"): the ExampleGen's output splits
COUNT_PREFIX = "weibo_"  # custom property names: weibo_read, weibo_dead_letter_bad_json, ...


class WeiboDeadLetters(types.Artifact):
    """The records the ingestion set aside (``dead_letters.jsonl``, one reason each), the same-id duplicates it
    dropped (``duplicates.jsonl``, each with the kept record's id and source) and the ingestion's counts
    (``counts.json``)."""

    TYPE_NAME = "tfcl.WeiboDeadLetters"  # <namespace>.<Name>: the form Kubeflow V2 needs


class TopicVocabulary(types.Artifact):
    """The topic vocabulary of the train split: ``topic_vocab.tsv`` (``topic<TAB>train posts``, most frequent
    first, at least ``min_topic_count``) and ``topic_counts.tsv`` (every topic, train and eval counts)."""

    TYPE_NAME = "tfcl.TopicVocabulary"


class WeiboExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    PARAMETERS = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        "min_topic_count": ExecutionParameter(type=int),
        "input_format": ExecutionParameter(type=str, optional=True),
        "encoding": ExecutionParameter(type=str),
        "max_chars": ExecutionParameter(type=int),
    }
    OUTPUTS = {
        **standard_component_specs.FileBasedExampleGenSpec.OUTPUTS,
        "dead_letters": ChannelParameter(type=WeiboDeadLetters),
        "topic_vocabulary": ChannelParameter(type=TopicVocabulary),
    }


def split_config(eval_fraction):
    """The ``Output`` config of a train/eval split by post id: ``eval_fraction`` as whole hash buckets of 100.

    The executor reads the fraction back from it and splits with the ingestion's own hash of the id
    (:func:`tfcl.data.weibo_ingest.split_of`), so a post lands in the split ``tfcl ingest weibo`` puts it in.
    """
    eval_buckets = round(eval_fraction * 100)
    if not 0 < eval_buckets < 100:
        raise ValueError(f"eval_fraction must be in [0.01, 0.99], got {eval_fraction}")
    return example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=100 - eval_buckets),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
            ],
            partition_feature_name="id",
        )
    )


def eval_fraction_of(output_config):
    buckets = {split.name: split.hash_buckets for split in output_config.split_config.splits}
    if sorted(buckets) != sorted(SPLITS):
        raise ValueError(f"WeiboExampleGen writes the splits {SPLITS}; output_config has {sorted(buckets)}")
    return buckets["eval"] / sum(buckets.values())


class WeiboExampleGenExecutor(base_beam_executor.BaseBeamExecutor):
    """Raw Weibo files → ``Examples`` (train/eval tf.Example TFRecords), dead letters, topic vocabulary."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict,
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = proto_utils.json_to_proto(exec_properties["input_config"], example_gen_pb2.Input())
        output_config = proto_utils.json_to_proto(exec_properties["output_config"], example_gen_pb2.Output())
        if len(input_config.splits) != 1:
            raise ValueError("WeiboExampleGen reads one input split and splits it by post id")
        pattern = os.path.join(exec_properties["input_base"], input_config.splits[0].pattern)
        paths = weibo_ingest.expand_inputs([pattern])
        fmt = weibo_ingest.input_format(paths, exec_properties.get("input_format") or None)
        parser = weibo_ingest.record_parser(
            paths, fmt, exec_properties["encoding"], max_chars=exec_properties["max_chars"]
        )
        examples = artifact_utils.get_single_instance(output_dict["examples"])
        dead_letters = artifact_utils.get_single_instance(output_dict["dead_letters"])
        vocabulary = artifact_utils.get_single_instance(output_dict["topic_vocabulary"])
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
        file_format = exec_properties["output_file_format"]

        with self._make_beam_pipeline() as pipeline:
            weibo_ingest.build_ingestion(
                pipeline,
                paths,
                fmt,
                parser,
                weibo_ingest.Destinations(
                    lambda split: write_split.WriteSplit(
                        artifact_utils.get_split_uri([examples], split), file_format, exec_properties
                    ),
                    dead_letters_dir=dead_letters.uri,
                    topics_dir=vocabulary.uri,
                ),
                eval_fraction=eval_fraction_of(output_config),
                min_topic_count=exec_properties["min_topic_count"],
            )
        counts = ingestion_counts(dead_letters)
        weibo_ingest.check_counts(counts)
        for artifact in (examples, dead_letters):
            record_counts(artifact, counts)
        vocabulary.set_int_custom_property("min_topic_count", exec_properties["min_topic_count"])
        vocabulary.set_int_custom_property("topics", len(read_topic_vocabulary(vocabulary)))
        examples_utils.set_payload_format(examples, exec_properties["output_data_format"])
        examples_utils.set_file_format(examples, write_split.to_file_format_str(file_format))


def ingestion_counts(dead_letters: types.Artifact) -> dict:
    """The ingestion's ``counts.json`` (see :func:`tfcl.data.weibo_ingest.counts_report`) of a dead-letter artifact."""
    return weibo_ingest.read_counts(dead_letters.uri)


def record_counts(artifact, counts):
    """The counts as integer custom properties ``weibo_read``, ``weibo_dead_letter_<reason>``, ..."""
    for name, value in counts.items():
        if name != "dead_letter_reasons":
            artifact.set_int_custom_property(COUNT_PREFIX + name, value)
    for reason, value in counts["dead_letter_reasons"].items():
        artifact.set_int_custom_property(f"{COUNT_PREFIX}dead_letter_{reason}", value)


def read_topic_vocabulary(vocabulary):
    """The topics of a :class:`TopicVocabulary` artifact, most frequent first."""
    path = os.path.join(vocabulary.uri, weibo_ingest.TOPIC_VOCAB_FILE)
    return [line.split("\t")[0] for line in io_utils.read_string_file(path).splitlines() if line]


class WeiboExampleGen(FileBasedExampleGen):
    """ExampleGen for Weibo exports (JSON lines or CSV): the Beam ingestion of :mod:`tfcl.data.weibo_ingest`.

    Outputs ``examples`` (splits ``train``/``eval`` by a hash of the post id; features of
    :func:`tfcl.data.weibo.feature_spec`), ``dead_letters`` and ``topic_vocabulary``. ``input_base`` is the folder
    of the export files and ``pattern`` selects them (one format: JSON lines or CSV).
    """

    SPEC_CLASS = WeiboExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(WeiboExampleGenExecutor)

    def __init__(
        self,
        input_base,
        pattern="*",
        *,
        eval_fraction=0.1,
        min_topic_count=5,
        input_format=None,
        encoding="utf-8",
        max_chars=weibo.MAX_CHARS,
        range_config=None,
    ):
        input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="posts", pattern=pattern)])
        spec = WeiboExampleGenSpec(
            input_base=input_base,
            input_config=input_config,
            output_config=split_config(eval_fraction),
            range_config=range_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            min_topic_count=min_topic_count,
            input_format=input_format,
            encoding=encoding,
            max_chars=max_chars,
            examples=types.Channel(type=standard_artifacts.Examples),
            dead_letters=types.Channel(type=WeiboDeadLetters),
            topic_vocabulary=types.Channel(type=TopicVocabulary),
        )
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)


def read_posts(file_patterns):
    """The :class:`tfcl.data.weibo.WeiboPost` s of gzipped tf.Example TFRecords matching ``file_patterns``."""
    files = sorted(file for pattern in file_patterns for file in tf.io.gfile.glob(pattern))
    spec = weibo.feature_spec()
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [weibo.from_example(tf.io.parse_single_example(record, spec)) for record in records]


def split_posts(examples, split):
    """The posts of one split of an ``Examples`` artifact."""
    return read_posts([io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split))])


@tfx.dsl.components.component
def WeiboSchemaGen(
    schema: OutputArtifact[standard_artifacts.Schema], min_examples: Parameter[int] = 10, min_topics: Parameter[int] = 2
):
    """The curated schema of the ingested posts, from the ingestion's feature spec (not inferred from the data).

    Every feature is present on every example (the ingestion writes them all); the scalar ones hold one value.
    Each split has at least ``min_examples`` posts and ``topics`` at least ``min_topics`` distinct values: with
    fewer, CD-TOM's in-batch contrast has no negatives (a corpus whose posts carry no hashtags fails here).
    An inferred schema would freeze the day's topics and picture names as domains and fail on tomorrow's.
    """
    contract = schema_pb2.Schema()
    contract.dataset_constraints.min_examples_count = min_examples
    for name in weibo.FEATURES:
        feature = contract.feature.add(name=name, type=schema_pb2.BYTES)
        feature.presence.min_fraction = 1.0
        if name not in weibo.LIST_FEATURES:
            feature.shape.dim.add(size=1)
        if name == "topics":
            feature.unique_constraints.min = min_topics
            feature.unique_constraints.max = 2**62
    io_utils.write_pbtxt_file(os.path.join(schema.uri, "schema.pbtxt"), contract)


def training_data_shortfalls(counts: dict, topics: int, min_examples: int, min_topics: int) -> list[str]:
    """Why the ingested data cannot train a model: fewer than ``min_examples`` train posts or fewer than
    ``min_topics`` vocabulary topics, each reason with what the ingestion did with the records (``[]`` if none)."""
    reasons = []
    if counts["train"] < min_examples:
        dead = {reason: n for reason, n in counts["dead_letter_reasons"].items() if n}
        why = f" ({', '.join(f'{reason} {n}' for reason, n in dead.items())})" if dead else ""
        reasons.append(
            f"the train split has {counts['train']} posts, fewer than {min_examples}: of {counts['read']} records "
            f"read, {counts['dead_lettered']} were dead-lettered{why} and {counts['duplicates']} were duplicates"
        )
    if topics < min_topics:
        reasons.append(f"the topic vocabulary has {topics} topics, fewer than {min_topics}")
    return reasons


@tfx.dsl.components.component
def AnomaliesGate(
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    dead_letters: InputArtifact[WeiboDeadLetters],
    topic_vocabulary: InputArtifact[TopicVocabulary],
    min_examples: Parameter[int] = 10,
    min_topics: Parameter[int] = 2,
):
    """Fails (so that nothing downstream runs) when ExampleValidator found anomalies in any split, or when the
    ingestion left too little to train on (:func:`training_data_shortfalls`; an empty split's statistics raise no
    anomaly). The exception names every reason."""
    found = {}
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies], split), "SchemaDiff.pb")
        report = anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
        descriptions = [f"{name}: {info.description}" for name, info in sorted(report.anomaly_info.items())]
        if report.HasField("dataset_anomaly_info"):
            descriptions.append(f"dataset: {report.dataset_anomaly_info.description}")
        if descriptions:
            found[split] = descriptions
    shortfalls = training_data_shortfalls(
        ingestion_counts(dead_letters), len(read_topic_vocabulary(topic_vocabulary)), min_examples, min_topics
    )
    if shortfalls:
        raise AnomaliesFound(f"too little to train on, so training is blocked: {'; '.join(shortfalls)}")
    if found:
        raise AnomaliesFound(f"the examples do not match the schema, so training is blocked: {found}")


class AnomaliesFound(RuntimeError):
    """ExampleValidator reported anomalies."""


def model_fingerprint(model_dir: str) -> str:
    """SHA-256 over the relative path and the bytes of every file of a model directory."""
    digest = hashlib.sha256()
    for folder, _, names in sorted(tf.io.gfile.walk(model_dir)):
        for name in sorted(names):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, model_dir).encode() + b"\0" + io_utils.read_bytes_file(path))
    return digest.hexdigest()


def newest_version(base_directory: str) -> str | None:
    """The newest complete (``saved_model.pb`` present) numbered version under a TF Serving model base, or None."""
    if not tf.io.gfile.isdir(base_directory):
        return None
    versions = [
        name.rstrip("/")
        for name in tf.io.gfile.listdir(base_directory)
        if name.rstrip("/").isdigit() and tf.io.gfile.exists(os.path.join(base_directory, name, "saved_model.pb"))
    ]
    return max(versions, key=int, default=None)


class ChangedModelPusherExecutor(pusher_executor.Executor):
    """TFX's Pusher, except that a blessed model identical (:func:`model_fingerprint`) to the newest version under
    the push destination is not pushed again: a re-run whose Trainer was cached would otherwise add an identical
    version. The ``pushed_model`` artifact then has ``pushed`` 0 and ``unchanged_version`` naming that version."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict,
    ) -> None:
        destination = proto_utils.json_to_proto(exec_properties["push_destination"], pusher_pb2.PushDestination())
        base_directory = destination.filesystem.base_directory
        version = newest_version(base_directory)
        if (
            version is not None
            and self.CheckBlessing(input_dict)
            and model_fingerprint(self.GetModelPath(input_dict))
            == model_fingerprint(os.path.join(base_directory, version))
        ):
            pushed_model = artifact_utils.get_single_instance(output_dict["pushed_model"])
            pushed_model.set_int_custom_property("pushed", 0)
            pushed_model.set_string_custom_property("unchanged_version", version)
            logging.info("the model is version %s of %s already: not pushed again", version, base_directory)
            return
        super().Do(input_dict, output_dict, exec_properties)


def evaluate_retrieval(model_dir, queries, index_topics, vocabulary, batch_size=256):
    """Topic prediction and similar-post metrics of an exported Weibo SavedModel on ``queries`` (posts).

    The model's ``predict_topics`` ranks its top k topics; the topics it does not return rank last, so hit@1 and
    hit@5 are exact (k ≥ 5) and MRR counts a post whose topics are all outside the top k as ranked last.
    ``similar_posts`` answers from the index inside the model; ``index_topics`` maps the index's post ids to their
    topics. Queries go in as documents (their hashtags removed).
    """
    saved_model = tf.saved_model.load(model_dir)
    texts = [post.document for post in queries]
    gold = retrieval.multi_hot([post.topics for post in queries], vocabulary)
    answers = predict_in_batches(lambda batch: saved_model.signatures["predict_topics"](texts=batch), texts, batch_size)
    topics, topic_scores = answers["topics"], answers["scores"]
    column = {topic.encode("utf-8"): index for index, topic in enumerate(vocabulary)}
    scores = _scatter(topic_scores, [[column[topic] for topic in row] for row in topics], len(vocabulary))
    metrics = retrieval.topic_prediction_metrics(scores, gold)

    answers = predict_in_batches(lambda batch: saved_model.signatures["similar_posts"](texts=batch), texts, batch_size)
    post_ids, post_scores = answers["post_ids"], answers["scores"]
    neighbours = sorted(set(post_ids.ravel()))  # the index posts returned to some query: the only columns needed
    position = {post_id: index for index, post_id in enumerate(neighbours)}
    similarities = _scatter(post_scores, [[position[post_id] for post_id in row] for row in post_ids], len(neighbours))
    neighbour_topics = retrieval.multi_hot(
        [index_topics[post_id.decode("utf-8")] for post_id in neighbours], vocabulary
    )
    metrics.update(retrieval.neighbour_precision(similarities, gold, neighbour_topics, k=post_ids.shape[1]))
    return metrics


def _scatter(values, columns, width):
    """A ``[rows, width]`` matrix of -inf holding ``values[i, j]`` at column ``columns[i][j]``."""
    matrix = np.full((len(values), width), -np.inf)
    np.put_along_axis(matrix, np.asarray(columns), values, axis=1)
    return matrix


def tfidf_reference(train_posts, queries, vocabulary):
    """Topic prediction metrics of the TF-IDF nearest-centroid baseline on the same queries, for comparison."""
    documents = [post.document for post in train_posts]
    vectorizer = retrieval.char_tfidf(documents)
    train_topics = retrieval.multi_hot([post.topics for post in train_posts], vocabulary)
    scores = retrieval.tfidf_centroid_scores(vectorizer, documents, train_topics, [post.document for post in queries])
    return retrieval.topic_prediction_metrics(
        np.asarray(scores), retrieval.multi_hot([post.topics for post in queries], vocabulary)
    )


def evaluation_queries(posts, vocabulary):
    """The posts that can be scored: a document, and at least one topic of the vocabulary."""
    known = set(vocabulary)
    return [post for post in posts if post.document and known.intersection(post.topics)]


def blessing_reasons(metric, value, threshold, baseline_value=None):
    """Why a model whose ``metric`` is ``value`` is not blessed: ``[]`` when it is at least ``threshold`` and at
    least ``baseline_value`` (the last blessed model's, if there is one)."""
    reasons = [] if value >= threshold else [f"{metric} {value:.4f} < threshold {threshold}"]
    if baseline_value is not None and value < baseline_value:
        reasons.append(f"{metric} {value:.4f} < {baseline_value:.4f} of the last blessed model")
    return reasons


def serving_dir(model):
    """The SavedModel directory of a ``Model`` artifact."""
    return path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))


def signature_names(model_dir):
    """The signature names of a SavedModel, read from its ``saved_model.pb`` (without loading it)."""
    saved_model = saved_model_pb2.SavedModel.FromString(
        io_utils.read_bytes_file(os.path.join(model_dir, "saved_model.pb"))
    )
    return {name for graph in saved_model.meta_graphs for name in graph.signature_def}


def judge(model, baseline_model, evaluate, evaluation, blessing, *, metric, threshold, kind_signature, **references):
    """Score ``model`` (and ``baseline_model``, the last blessed one, if any) with ``evaluate`` (a SavedModel
    directory → metrics), decide the blessing (:func:`blessing_reasons`) and write both artifacts.

    ``evaluation`` gets ``metrics.json`` (model, baseline, ``references``, decision) and the model's metrics as
    float properties; ``blessing`` gets ``BLESSED`` or ``NOT_BLESSED`` and the ``blessed``/``current_model_id``/
    ``baseline_model_id`` properties the Pusher and ``LatestBlessedModelStrategy`` read. A baseline without the
    ``kind_signature`` is another trainer's (compiled for Kubeflow V2, the resolver does not keep to one trainer's
    models): it is ignored, and the report says so.
    """
    report = {
        "metric": metric,
        "threshold": threshold,
        "model": evaluate(serving_dir(model)),
        "baseline": None,
        **references,
    }
    if metric not in report["model"]:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(report['model'])}")
    if baseline_model is not None and kind_signature not in signature_names(serving_dir(baseline_model)):
        report["baseline_ignored"] = f"model {baseline_model.id} has no {kind_signature} signature"
        baseline_model = None
    if baseline_model is not None:
        # On a re-run with unchanged inputs the cached Trainer's model is the last blessed model itself.
        same_model = baseline_model.id == model.id
        report["baseline"] = report["model"] if same_model else evaluate(serving_dir(baseline_model))
        blessing.set_string_custom_property("baseline_model", baseline_model.uri)
        blessing.set_int_custom_property("baseline_model_id", baseline_model.id)
    value = report["model"][metric]
    baseline_value = None if report["baseline"] is None else report["baseline"][metric]
    reasons = blessing_reasons(metric, value, threshold, baseline_value)
    report["blessed"], report["reasons"] = not reasons, reasons
    io_utils.write_string_file(
        os.path.join(evaluation.uri, "metrics.json"), json.dumps(report, indent=2, sort_keys=True)
    )
    for name, number in report["model"].items():
        evaluation.set_float_custom_property(name, number)
    io_utils.write_string_file(os.path.join(blessing.uri, "BLESSED" if not reasons else "NOT_BLESSED"), "")
    blessing.set_int_custom_property("blessed", int(not reasons))
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_float_custom_property(metric, value)
    blessing.set_string_custom_property("reasons", "; ".join(reasons))


@tfx.dsl.components.component
def RetrievalEvaluator(
    examples: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    topic_vocabulary: InputArtifact[TopicVocabulary],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    threshold: Parameter[float],
    metric: Parameter[str] = "hit@5",
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
):
    """Bless the CD-TOM ``model`` when its ``metric`` on the eval split is at least ``threshold`` and, if there is a
    last blessed model (``baseline_model``, from ``LatestBlessedModelStrategy``), at least that model's on the same
    split (:func:`judge`; the reference in ``metrics.json``: the TF-IDF baseline, :func:`tfidf_reference`).
    """
    vocabulary = read_topic_vocabulary(topic_vocabulary)
    train_posts = split_posts(examples, "train")
    queries = evaluation_queries(split_posts(examples, "eval"), vocabulary)
    if not queries:
        raise ValueError("no eval post carries a topic of the vocabulary: nothing to evaluate")
    index_topics = {post.id: post.topics for post in train_posts}
    judge(
        model,
        baseline_model,
        lambda model_dir: evaluate_retrieval(model_dir, queries, index_topics, vocabulary),
        evaluation,
        blessing,
        metric=metric,
        threshold=threshold,
        kind_signature="predict_topics",
        tfidf=tfidf_reference(train_posts, queries, vocabulary),
    )


@tfx.dsl.components.component
def PictureRetrievalEvaluator(
    examples: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    threshold: Parameter[float],
    picture_root: Parameter[str],
    metric: Parameter[str] = "t2i_recall@5",
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
):
    """Bless the W-CLIP ``model`` as :class:`RetrievalEvaluator` blesses CD-TOM's (:func:`judge`), on the
    post ↔ picture retrieval of the eval split's pairs (:func:`tfcl.eval.image_text.evaluate_picture_model`;
    ``t2i``: post → pictures, ``i2t``: picture → posts). Relative picture paths are under ``picture_root``.
    ``metrics.json`` also holds the chance level of each recall (:func:`tfcl.eval.image_text.chance_metrics`) and
    the eval split's picture counts (set-aside references by reason).
    """
    posts = split_posts(examples, "eval")
    pairs = post_pictures.post_picture_pairs(posts, picture_root)
    report = post_pictures.pairs_report(pairs, posts)
    if not len(pairs["text"]):
        raise post_pictures.NoPicturePairs(f"no eval post has a usable picture: {report}")
    judge(
        model,
        baseline_model,
        lambda model_dir: evaluate_picture_model(model_dir, posts, picture_root),
        evaluation,
        blessing,
        metric=metric,
        threshold=threshold,
        kind_signature="posts_for_picture",
        chance=chance_metrics(post_pictures.retrieval_entities(pairs)[2]),
        pictures=report,
    )
