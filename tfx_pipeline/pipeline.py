"""The Weibo pipeline: ingest → statistics → schema → validation → train → evaluate → push, for CD-TOM (posts →
topics, similar posts) and, with ``pictures``, W-CLIP (posts ↔ pictures).

::

    WeiboExampleGen ──examples──────┬─ StatisticsGen ─ ExampleValidator ─ AnomaliesGate (runs before the trainers)
      ├─ dead_letters               │   WeiboSchemaGen ─┘  (or ImportSchemaGen)
      └─ topic_vocabulary ──┐       ├─ Trainer (trainer_module.run_fn) ─ model
                            └───────┼─ RetrievalEvaluator ◄─ latest blessed Trainer model (Resolver)
                                    │    └─ blessing ─ Pusher → <serving_model_dir>/<model_name>/<version>/
                                    │  with pictures:
                                    ├─ wclip_trainer (wclip_trainer_module.run_fn) ─ model
                                    └─ PictureRetrievalEvaluator ◄─ latest blessed wclip_trainer model (Resolver)
                                         └─ blessing ─ wclip_pusher → <serving_model_dir>/weibo_pictures/<version>/

The gate also stops a run whose train split or topic vocabulary is too small, saying why; a Pusher does not push a
model identical to the newest version already pushed. Each resolver reads only its own trainer's models, so
neither evaluator compares with the other branch's model. (Compiled for Kubeflow V2, TFX's resolver tasks query
every blessed model of the pipeline; the evaluators then ignore a baseline of the other kind, see
:func:`tfx_pipeline.components.judge`.)
"""

import os
from typing import Any

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from tfx_pipeline.components import (
    AnomaliesGate,
    ChangedModelPusherExecutor,
    PictureRetrievalEvaluator,
    RetrievalEvaluator,
    WeiboExampleGen,
    WeiboSchemaGen,
)

MODEL_NAME = "weibo_topics"  # the models' names in serving/models.config
PICTURE_MODEL_NAME = "weibo_pictures"
HERE = os.path.dirname(os.path.abspath(__file__))
TRAINER_MODULE = os.path.join(HERE, "trainer_module.py")
WCLIP_TRAINER_MODULE = os.path.join(HERE, "wclip_trainer_module.py")
PICTURE_DEFAULTS = {"trainer_config": None, "threshold": 0.5, "metric": "t2i_recall@5"}


def create_pipeline(
    pipeline_name,
    pipeline_root,
    data_root,
    serving_model_dir,
    metadata_path=None,
    beam_pipeline_args=(),
    trainer_config=None,
    threshold=0.5,
    *,
    input_pattern="*",
    metric="hit@5",
    eval_fraction=0.1,
    min_topic_count=5,
    min_examples=10,
    min_topics=2,
    schema_path=None,
    model_name=MODEL_NAME,
    enable_cache=True,
    pictures=None,
    vertex_training=None,
):
    """A ``tfx.dsl.Pipeline`` training CD-TOM (and W-CLIP, with ``pictures``) on the Weibo exports under
    ``data_root`` and pushing the blessed models to serving.

    Args:
      pipeline_name, pipeline_root: as ``tfx.dsl.Pipeline``'s.
      data_root: the folder of the JSON-lines or CSV exports; ``input_pattern`` selects files in it.
      serving_model_dir: the TF Serving model base: blessed models are pushed to
        ``<serving_model_dir>/<model_name>/<version>/``.
      metadata_path: the SQLite ML Metadata file (``None``: the orchestrator's own, e.g. on Kubeflow).
      beam_pipeline_args: Beam options of the ExampleGen, StatisticsGen and ExampleValidator.
      trainer_config: the Trainer's ``custom_config`` (see :mod:`tfx_pipeline.trainer_module`).
      threshold, metric: the evaluator blesses a model whose ``metric`` is at least ``threshold`` and not below
        the last blessed model's.
      eval_fraction, min_topic_count: the ingestion's held-out share and the vocabulary's minimum count.
      min_examples, min_topics: the schema's minimum number of posts per split and of distinct topics; the
        anomalies gate also stops the run before training when the train split has fewer posts or the topic
        vocabulary fewer topics.
      schema_path: a curated ``schema.pbtxt`` to validate against (``ImportSchemaGen``) instead of
        :func:`WeiboSchemaGen`'s.
      enable_cache: re-use the results of executions whose inputs and parameters are unchanged.
      pictures: ``None`` (no W-CLIP branch), or the branch's options (each optional): ``trainer_config`` (the
        W-CLIP Trainer's ``custom_config``, see :mod:`tfx_pipeline.wclip_trainer_module`), ``threshold`` and
        ``metric`` (default ``t2i_recall@5``, post → pictures) of :func:`PictureRetrievalEvaluator`, and
        ``picture_root`` (default ``data_root``: relative picture paths lie next to the exports). Blessed W-CLIP
        models are pushed to ``<serving_model_dir>/weibo_pictures/<version>/``.
      vertex_training: ``None`` (the trainers train inside their pipeline step), or :func:`vertex_training_job`'s
        custom job: each trainer runs as a Vertex AI training job of that many workers.
    """
    example_gen = WeiboExampleGen(
        input_base=data_root, pattern=input_pattern, eval_fraction=eval_fraction, min_topic_count=min_topic_count
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    if schema_path:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
    else:
        schema_gen = WeiboSchemaGen(min_examples=min_examples, min_topics=min_topics)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomalies_gate = AnomaliesGate(
        anomalies=example_validator.outputs["anomalies"],
        dead_letters=example_gen.outputs["dead_letters"],
        topic_vocabulary=example_gen.outputs["topic_vocabulary"],
        min_examples=min_examples,
        min_topics=min_topics,
    )
    trainer = gated_trainer(
        TRAINER_MODULE,
        example_gen,
        schema_gen,
        anomalies_gate,
        {"min_topic_count": min_topic_count, **(trainer_config or {})},
        vertex_training,
    )
    latest_blessed_model = latest_blessed_model_resolver(trainer).with_id("latest_blessed_model_resolver")
    evaluator = RetrievalEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        topic_vocabulary=example_gen.outputs["topic_vocabulary"],
        baseline_model=latest_blessed_model.outputs["model"],
        threshold=threshold,
        metric=metric,
    )
    pusher = blessed_model_pusher(trainer, evaluator, os.path.join(serving_model_dir, model_name))
    components = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        anomalies_gate,
        trainer,
        latest_blessed_model,
        evaluator,
        pusher,
    ]
    if pictures is not None:
        components += picture_branch(
            example_gen,
            schema_gen,
            anomalies_gate,
            serving_model_dir,
            vertex_training=vertex_training,
            **{**PICTURE_DEFAULTS, "picture_root": data_root, **pictures},
        )
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path) if metadata_path else None
        ),
        beam_pipeline_args=list(beam_pipeline_args),
    )


def picture_branch(
    example_gen,
    schema_gen,
    anomalies_gate,
    serving_model_dir,
    *,
    trainer_config,
    threshold,
    metric,
    picture_root,
    vertex_training=None,
):
    """The W-CLIP components: Trainer ``wclip_trainer``, its resolver, :func:`PictureRetrievalEvaluator`, Pusher
    ``wclip_pusher`` to ``<serving_model_dir>/weibo_pictures``."""
    trainer = gated_trainer(
        WCLIP_TRAINER_MODULE,
        example_gen,
        schema_gen,
        anomalies_gate,
        {"picture_root": picture_root, **(trainer_config or {})},
        vertex_training,
    ).with_id("wclip_trainer")
    latest_blessed_model = latest_blessed_model_resolver(trainer).with_id("latest_blessed_wclip_resolver")
    evaluator = PictureRetrievalEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=latest_blessed_model.outputs["model"],
        threshold=threshold,
        metric=metric,
        picture_root=picture_root,
    )
    pusher = blessed_model_pusher(trainer, evaluator, os.path.join(serving_model_dir, PICTURE_MODEL_NAME))
    return [trainer, latest_blessed_model, evaluator, pusher.with_id("wclip_pusher")]


def gated_trainer(
    module_file: str,
    example_gen: Any,
    schema_gen: Any,
    anomalies_gate: Any,
    custom_config: dict,
    vertex_training: dict | None = None,
) -> Any:
    """A Trainer of ``module_file``'s ``run_fn`` on the ingested examples, run only after the anomalies gate; with
    ``vertex_training`` (:func:`vertex_training_job`), TFX's Vertex AI Trainer running that custom job."""
    trainer_class = tfx.components.Trainer
    if vertex_training is not None:
        trainer_class = tfx.extensions.google_cloud_ai_platform.Trainer
        custom_config = {**custom_config, **vertex_training}
    trainer = trainer_class(
        module_file=module_file,
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        custom_config=custom_config,
    )
    trainer.add_upstream_node(anomalies_gate)
    return trainer


def vertex_training_job(
    project: str,
    region: str,
    image: str,
    replicas: int = 2,
    machine_type: str = "n1-standard-8",
    accelerator: tuple[str, int] | None = None,
) -> dict:
    """The ``custom_config`` entries of TFX's Vertex AI Trainer for a custom job of ``replicas`` workers.

    Worker pool 0 is the chief (one replica), pool 1 the other ``replicas - 1`` workers; every replica runs
    ``image`` on ``machine_type`` (with ``accelerator``: ``(type, count)``, e.g. ``("NVIDIA_TESLA_T4", 1)``).
    Vertex AI gives each replica its ``TF_CONFIG``, so a Trainer with ``strategy: multi_worker`` in its config trains
    under ``MultiWorkerMirroredStrategy`` across them.
    """
    if replicas < 1:
        raise ValueError(f"a training job needs at least one replica, got {replicas}")
    machine_spec = {"machine_type": machine_type}
    if accelerator is not None:
        machine_spec.update(accelerator_type=accelerator[0], accelerator_count=accelerator[1])

    def pool(replica_count):
        return {"machine_spec": machine_spec, "replica_count": replica_count, "container_spec": {"image_uri": image}}

    vertex = tfx.extensions.google_cloud_ai_platform
    return {
        vertex.ENABLE_VERTEX_KEY: True,
        vertex.VERTEX_REGION_KEY: region,
        vertex.TRAINING_ARGS_KEY: {
            "project": project,
            "worker_pool_specs": [pool(1)] + ([pool(replicas - 1)] if replicas > 1 else []),
        },
    }


def latest_blessed_model_resolver(trainer):
    """A resolver of the latest blessed model of ``trainer`` (and its blessing): the model channel is restricted to
    that trainer's ``model`` output, and a blessing names its model (``current_model_id``), so no other trainer's
    model or blessing is picked."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.Model, producer_component_id=trainer.id, output_key="model"
        ),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    )


def blessed_model_pusher(trainer, evaluator, base_directory):
    """A Pusher of ``trainer``'s model, when ``evaluator`` blessed it and it differs from the newest version
    already there (:class:`ChangedModelPusherExecutor`), to ``base_directory/<version>/``."""
    return tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=base_directory)
        ),
        custom_executor_spec=executor_spec.ExecutorClassSpec(ChangedModelPusherExecutor),
    )
