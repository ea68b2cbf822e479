"""The pipeline compiles to a Kubeflow Pipelines / Vertex AI pipeline spec (``KubeflowV2DagRunner`` JSON).

``KubeflowV2DagRunner`` needs the ``kfp-pipeline-spec`` package (the pipeline-spec protos); without it these tests
are skipped.
"""

import argparse
import json

import pytest

pytest.importorskip("kfp.pipeline_spec", reason="KubeflowV2DagRunner needs the kfp-pipeline-spec package")

from tfcl.cli import run as run_command  # noqa: E402
from tfx_pipeline.runner import compile_kubeflow_v2  # noqa: E402

IMAGE = "example.com/tfcl-pipeline:test"
STEPS = {
    "WeiboExampleGen",
    "StatisticsGen",
    "WeiboSchemaGen",
    "ExampleValidator",
    "AnomaliesGate",
    "Trainer",
    "RetrievalEvaluator",
    "Pusher",
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("kubeflow")
    output = compile_kubeflow_v2(
        str(scratch / "pipeline.json"),
        pipeline_root=str(scratch / "root"),
        data_root="gs://bucket/weibo",
        serving_model_dir="gs://bucket/serving",
        image=IMAGE,
        threshold=0.6,
        trainer_config={"strategy": "multi_worker", "epochs": 3},
    )
    with open(output) as file:
        return json.load(file)["pipelineSpec"]


def test_spec_names_every_step_and_the_resolver(spec):
    tasks = spec["root"]["dag"]["tasks"]
    assert STEPS <= tasks.keys()
    assert {name for name in tasks if name.startswith("latest_blessed_model_resolver")}
    assert spec["pipelineInfo"]["name"] == "tfcl-weibo"


def test_steps_run_in_the_image_and_the_example_gen_resolves_its_input_at_run_time(spec):
    executors = spec["deploymentSpec"]["executors"]
    for step in STEPS:
        assert executors[f"{step}_executor"]["container"]["image"] == IMAGE
    # FileBasedExampleGen's driver fingerprints the input files before the cache is consulted.
    driver = executors["WeiboExampleGen_executor"]["container"]["lifecycle"]["preCacheCheck"]
    assert "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver" in driver["command"]


def test_training_waits_for_the_gate_and_the_evaluator_compares_with_the_last_blessed_model(spec):
    tasks = spec["root"]["dag"]["tasks"]
    assert "AnomaliesGate" in tasks["Trainer"]["dependentTasks"]
    inputs = tasks["RetrievalEvaluator"]["inputs"]
    assert inputs["artifacts"]["baseline_model"]["taskOutputArtifact"]["producerTask"].startswith(
        "latest_blessed_model_resolver"
    )
    assert inputs["parameters"]["threshold"]["runtimeValue"]["constantValue"]["doubleValue"] == 0.6
    custom_config = json.loads(
        tasks["Trainer"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constantValue"]["stringValue"]
    )
    assert custom_config == {"min_topic_count": 5, "strategy": "multi_worker", "epochs": 3}
    outputs = spec["components"]["WeiboExampleGen"]["outputDefinitions"]["artifacts"]
    assert {name: outputs[name]["artifactType"]["instanceSchema"].splitlines()[0] for name in outputs} == {
        "examples": "title: tfx.Examples",
        "dead_letters": "title: tfcl.WeiboDeadLetters",
        "topic_vocabulary": "title: tfcl.TopicVocabulary",
    }


def test_tfcl_pipeline_compile_writes_the_spec(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="tfcl")
    run_command.register(parser.add_subparsers(required=True))
    output = tmp_path / "pipeline.json"
    args = parser.parse_args(
        [
            "pipeline",
            "compile",
            "--kubeflow",
            str(output),
            "--pipeline-root",
            str(tmp_path),
            "--data-root",
            "gs://bucket/weibo",
            "--serving-model-dir",
            "gs://bucket/serving",
            "--image",
            IMAGE,
        ]
    )
    args.run(args)
    assert STEPS <= json.loads(output.read_text())["pipelineSpec"]["root"]["dag"]["tasks"].keys()
    assert str(output) in capsys.readouterr().out
