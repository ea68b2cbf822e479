"""Running the pipeline: locally with ``LocalDagRunner`` and SQLite ML Metadata, or compiled for Kubeflow Pipelines
/ Vertex AI Pipelines (``KubeflowV2DagRunner``'s pipeline-spec JSON)."""

import os

from tfx import v1 as tfx

from tfcl.data import weibo_ingest
from tfx_pipeline.pipeline import create_pipeline

PIPELINE_NAME = "tfcl-weibo"


def run_local(work_dir, data_root, *, pipeline_name=PIPELINE_NAME, direct_num_workers=1, **pipeline_options):
    """Run the pipeline with ``LocalDagRunner``; everything lands under ``work_dir``.

    ``work_dir/pipeline`` holds the artifacts, ``work_dir/metadata.sqlite`` the ML Metadata and
    ``work_dir/serving`` the TF Serving model base the Pusher writes to. ``pipeline_options`` go to
    :func:`tfx_pipeline.pipeline.create_pipeline`. Returns the paths.
    """
    paths = local_paths(work_dir)
    pipeline = create_pipeline(
        pipeline_name,
        paths["pipeline_root"],
        data_root,
        paths["serving_model_dir"],
        paths["metadata_path"],
        weibo_ingest.pipeline_options(direct_num_workers=direct_num_workers),
        **pipeline_options,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)
    return paths


def local_paths(work_dir):
    return {
        "pipeline_root": os.path.join(work_dir, "pipeline"),
        "metadata_path": os.path.join(work_dir, "metadata.sqlite"),
        "serving_model_dir": os.path.join(work_dir, "serving"),
    }


def compile_kubeflow_v2(
    output_file,
    *,
    pipeline_root,
    data_root,
    serving_model_dir,
    image,
    pipeline_name=PIPELINE_NAME,
    beam_pipeline_args=(),
    **pipeline_options,
):
    """Write the ``KubeflowV2DagRunner`` pipeline spec (JSON) of the pipeline to ``output_file``; returns it.

    ``image`` is the container every step runs in: TFX 1.16 with this package installed. The paths are as the
    steps see them (e.g. ``gs://`` URIs); ML Metadata is the orchestrator's own.
    """
    pipeline = create_pipeline(
        pipeline_name, pipeline_root, data_root, serving_model_dir, None, beam_pipeline_args, **pipeline_options
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_file)),
        output_filename=os.path.basename(output_file),
    )
    runner.run(pipeline, write_out=True)
    return output_file


def metadata_store(metadata_path):
    """The ML Metadata store of a local run (``work_dir/metadata.sqlite``)."""
    import ml_metadata as mlmd

    return mlmd.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))


def node_executions(metadata_path):
    """``{node id: executions, oldest first}`` of a local run's metadata; a node id is a component's id (its class
    name unless set with ``.with_id``: ``"Trainer"``, ``"wclip_trainer"``, ``"RetrievalEvaluator"``, ...)."""
    store = metadata_store(metadata_path)
    pipelines = [context.name for context in store.get_contexts_by_type("pipeline")]
    executions = {}
    for context in store.get_contexts_by_type("node"):  # named <pipeline name>.<node id>
        pipeline = next(name for name in pipelines if context.name.startswith(name + "."))
        executions.setdefault(context.name[len(pipeline) + 1 :], []).extend(store.get_executions_by_context(context.id))
    return {node: sorted(runs, key=lambda execution: execution.id) for node, runs in executions.items()}


def latest_output(metadata_path, node, key, artifact_type):
    """The ``key`` output (a ``artifact_type``) of the newest execution of ``node`` (a component's id, see
    :func:`node_executions`) in a local run's metadata, cached executions included; None if there is none."""
    from ml_metadata.proto import metadata_store_pb2

    executions = node_executions(metadata_path).get(node)
    if not executions:
        return None
    store = metadata_store(metadata_path)
    ids = [
        event.artifact_id
        for event in store.get_events_by_execution_ids([executions[-1].id])
        if event.type == metadata_store_pb2.Event.OUTPUT and event.path.steps[0].key == key
    ]
    if not ids:
        return None
    artifact = artifact_type()
    artifact.set_mlmd_artifact(store.get_artifacts_by_id(ids[:1])[0])
    return artifact
