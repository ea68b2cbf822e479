"""The Weibo CD-TOM pipeline: ingest → statistics → schema → validation → train → evaluate → push.

::

    WeiboExampleGen ──examples──────┬─ StatisticsGen ─ ExampleValidator ─ AnomaliesGate ─┐ (runs before)
      ├─ dead_letters               │   WeiboSchemaGen ─┘  (or ImportSchemaGen)            │
      └─ topic_vocabulary ──┐       ├─ Trainer (trainer_module.run_fn) ─ model ◄───────────┘
                            └───────┴─ RetrievalEvaluator ◄─ latest blessed model (Resolver)
                                         └─ blessing ─ Pusher → <serving_model_dir>/<model_name>/<version>/
"""
import os

from tfx import v1 as tfx

from tfx_pipeline.components import AnomaliesGate, RetrievalEvaluator, WeiboExampleGen, WeiboSchemaGen

MODEL_NAME = "weibo_topics"  # the model's name in serving/models.config
TRAINER_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trainer_module.py")


def create_pipeline(pipeline_name, pipeline_root, data_root, serving_model_dir, metadata_path=None,
                    beam_pipeline_args=(), trainer_config=None, threshold=0.5, *, input_pattern="*",
                    metric="hit@5", eval_fraction=0.1, min_topic_count=5, min_examples=10, schema_path=None,
                    model_name=MODEL_NAME, enable_cache=True):
    """A ``tfx.dsl.Pipeline`` training CD-TOM on the Weibo exports under ``data_root`` and pushing it to serving.

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
      min_examples: the schema's minimum number of posts per split.
      schema_path: a curated ``schema.pbtxt`` to validate against (``ImportSchemaGen``) instead of
        :func:`WeiboSchemaGen`'s.
      enable_cache: re-use the results of executions whose inputs and parameters are unchanged.
    """
    example_gen = WeiboExampleGen(input_base=data_root, pattern=input_pattern, eval_fraction=eval_fraction,
                                  min_topic_count=min_topic_count)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    if schema_path:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
    else:
        schema_gen = WeiboSchemaGen(min_examples=min_examples)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])
    trainer = tfx.components.Trainer(
        module_file=TRAINER_MODULE,
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        custom_config={"min_topic_count": min_topic_count, **(trainer_config or {})},
    )
    trainer.add_upstream_node(anomalies_gate)
    latest_blessed_model = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = RetrievalEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        topic_vocabulary=example_gen.outputs["topic_vocabulary"],
        baseline_model=latest_blessed_model.outputs["model"],
        threshold=threshold,
        metric=metric,
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(filesystem=tfx.proto.PushDestination.Filesystem(
            base_directory=os.path.join(serving_model_dir, model_name))),
    )
    components = [example_gen, statistics_gen, schema_gen, example_validator, anomalies_gate, trainer,
                  latest_blessed_model, evaluator, pusher]
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path) if metadata_path else None),
        beam_pipeline_args=list(beam_pipeline_args),
    )
