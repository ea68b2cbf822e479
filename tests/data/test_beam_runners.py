"""The ingestion's Beam options for every runner it offers, and its graph built for Dataflow, Flink and Spark.

Nothing is submitted (nothing outside this machine can be reached): the DataflowRunner translates the pipeline into
its job in ``--dry_run`` mode; the Flink and Spark graphs are the portable pipeline protos their job servers would
receive.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import (
    DirectOptions,
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SparkRunnerOptions,
    StandardOptions,
    WorkerOptions,
)

from tfcl.cli import ingest
from tfcl.cli.console import UserError
from tfcl.data import weibo_ingest

STATUSES = str(Path(__file__).parents[1] / "fixtures" / "weibo" / "statuses.jsonl")
# Stages of the ingestion graph (ReadWeiboRecords | IngestWeibo) that every runner must receive.
STAGES = ("Read/Paths", "Ingest/Parse", "Ingest/GroupById", "Ingest/SplitByIdHash", "Ingest/AllTallies")
DATAFLOW = [
    "--project=test-project",
    "--region=europe-west4",
    "--temp_location=gs://bucket/tmp",
    "--job_name=tfcl-ingest-test",
    "--num_workers=8",
    "--max_num_workers=32",
    "--sdk_location=container",
    "--no_auth",
    "--dry_run=True",  # translate the job, do not submit it
]


def ingestion_graph(options):
    """The ingestion of the statuses fixture, built (not run) on a pipeline with ``options``."""
    parser = weibo_ingest.record_parser([STATUSES], "jsonl")
    pipeline = beam.Pipeline(options=PipelineOptions(options))
    _ = (
        pipeline
        | "Read" >> weibo_ingest.ReadWeiboRecords([STATUSES], "jsonl")
        | "Ingest" >> weibo_ingest.IngestWeibo(parser)
    )
    return pipeline


def transform_names(proto):
    return {transform.unique_name for transform in proto.components.transforms.values()}


def assert_has_stages(names):
    for stage in STAGES:
        assert any(name == stage or name.startswith(stage + "/") for name in names), stage


def test_direct_runner_options():
    assert weibo_ingest.pipeline_options() == ["--runner=DirectRunner"]
    options = PipelineOptions(weibo_ingest.pipeline_options(direct_num_workers=2, extra=["--job_name=x"]))
    assert options.view_as(StandardOptions).runner == "FnApiRunner"
    direct = options.view_as(DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("multi_processing", 2)
    assert options.get_all_options()["job_name"] == "x"
    assert "--direct_num_workers=0" in weibo_ingest.pipeline_options(direct_num_workers=0)  # one per core


def test_bad_runner_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown runner 'SparkRuner'"):
        weibo_ingest.pipeline_options("SparkRuner")
    with pytest.raises(ValueError, match="direct_num_workers is a DirectRunner option"):
        weibo_ingest.pipeline_options("DataflowRunner", direct_num_workers=4)
    with pytest.raises(ValueError, match="0 \\(one per core\\) or more"):
        weibo_ingest.pipeline_options(direct_num_workers=-1)


def test_tfcl_ingest_passes_runner_options_through(tmp_path):
    parser = argparse.ArgumentParser(prog="tfcl")
    ingest.register(parser.add_subparsers(required=True))
    args = parser.parse_args(
        ["ingest", "weibo", STATUSES, "--out", str(tmp_path), "--runner", "FlinkRunner"]
        + ["--pipeline-arg=--flink_master=flink:8081", "--pipeline-arg=--parallelism=4"]
    )
    assert ingest.pipeline_args(args) == ["--runner=FlinkRunner", "--flink_master=flink:8081", "--parallelism=4"]
    args = parser.parse_args(["ingest", "weibo", STATUSES, "--out", str(tmp_path), "--runner", "Dataflow"])
    with pytest.raises(UserError, match="unknown runner 'Dataflow'"):
        ingest.pipeline_args(args)


def test_dataflow_translates_the_ingestion_into_a_job():
    options = weibo_ingest.pipeline_options("DataflowRunner", extra=DATAFLOW)
    pipeline = ingestion_graph(options)
    job = pipeline.run().job  # dry run: the job Dataflow would receive, not submitted
    assert job.proto.name == "tfcl-ingest-test"
    assert str(job.proto.type) == "JOB_TYPE_BATCH"
    assert_has_stages(transform_names(job.proto_pipeline))
    cloud, workers = job.options.view_as(GoogleCloudOptions), job.options.view_as(WorkerOptions)
    assert (cloud.project, cloud.region) == ("test-project", "europe-west4")
    assert cloud.temp_location.startswith("gs://bucket/tmp/tfcl-ingest-test")  # the job's own folder under it
    assert (workers.num_workers, workers.max_num_workers) == (8, 32)
    environments = job.proto_pipeline.components.environments.values()
    assert environments and all(env.urn == "beam:env:docker:v1" for env in environments)  # Dataflow runs containers


@pytest.mark.parametrize(
    ("runner", "extra", "view", "expected"),
    [
        (
            "FlinkRunner",
            ["--flink_master=flink:8081", "--parallelism=4"],
            FlinkRunnerOptions,
            {"flink_master": "flink:8081", "parallelism": 4},
        ),
        (
            "SparkRunner",
            ["--spark_master_url=spark://spark:7077"],
            SparkRunnerOptions,
            {"spark_master_url": "spark://spark:7077"},
        ),
    ],
)
def test_portable_runners_receive_the_ingestion_graph(runner, extra, view, expected):
    options = PipelineOptions(weibo_ingest.pipeline_options(runner, extra=extra))
    assert options.view_as(StandardOptions).runner == runner
    assert {name: getattr(options.view_as(view), name) for name in expected} == expected
    assert type(beam.runners.create_runner(runner)).__name__ == runner
    pipeline = ingestion_graph(weibo_ingest.pipeline_options(runner, extra=extra))
    assert_has_stages(transform_names(pipeline.to_runner_api()))
