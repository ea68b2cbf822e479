"""The pipeline compiles to a Kubeflow Pipelines / Vertex AI pipeline spec (``KubeflowV2DagRunner`` JSON).

``KubeflowV2DagRunner`` needs the ``kfp-pipeline-spec`` package (the pipeline-spec protos); without it these tests
are skipped.
"""

import argparse
import json

import pytest

pytest.importorskip("kfp.pipeline_spec", reason="KubeflowV2DagRunner needs the kfp-pipeline-spec package")

from tfcl.cli import run as run_command  # noqa: E402
from tfx_pipeline.pipeline import vertex_training_job  # noqa: E402
from tfx_pipeline.runner import compile_kubeflow_v2  # noqa: E402
from tfx_pipeline.trainer_module import DEFAULTS, training_config  # noqa: E402

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


def compile_command(tmp_path, *options):
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
            *options,
        ]
    )
    return args, output


def test_tfcl_pipeline_compile_writes_the_spec(tmp_path, capsys):
    args, output = compile_command(tmp_path)
    args.run(args)
    spec = json.loads(output.read_text())["pipelineSpec"]
    assert STEPS <= spec["root"]["dag"]["tasks"].keys()
    assert "ai_platform_training_args" not in trainer_config(spec, "Trainer")  # trains inside its step
    assert str(output) in capsys.readouterr().out


def trainer_config(spec, task):
    parameters = spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"]
    return json.loads(parameters["custom_config"]["runtimeValue"]["constantValue"]["stringValue"])


@pytest.mark.parametrize("pictures", [False, True])
def test_vertex_trainers_ask_for_a_pool_of_workers(tmp_path, pictures):
    """With --trainer-replicas 3 each Trainer runs as a Vertex AI job: a chief pool of 1 and a worker pool of 2."""
    args, output = compile_command(
        tmp_path,
        "--trainer-replicas",
        "3",
        "--vertex-project",
        "my-project",
        "--vertex-region",
        "europe-west4",
        *(["--pictures"] if pictures else []),
    )
    args.run(args)
    spec = json.loads(output.read_text())["pipelineSpec"]
    for task in ["Trainer", "wclip_trainer"] if pictures else ["Trainer"]:
        config = trainer_config(spec, task)
        assert config["strategy"] == "multi_worker"
        assert config["ai_platform_enable_vertex"] is True
        assert config["ai_platform_vertex_region"] == "europe-west4"
        job = config["ai_platform_training_args"]
        assert job["project"] == "my-project"
        pools = job["worker_pool_specs"]
        assert [pool["replica_count"] for pool in pools] == [1, 2]
        assert all(pool["container_spec"]["image_uri"] == IMAGE for pool in pools)
        assert all(pool["machine_spec"] == {"machine_type": "n1-standard-8"} for pool in pools)
        executor = spec["deploymentSpec"]["executors"][f"{task}_executor"]["container"]
        assert "tfx.extensions.google_cloud_ai_platform.trainer.executor" in json.dumps(executor)
        # the module's run_fn trains with the rest of the config
        assert set(training_config(config, {})) == {
            "strategy",
            *({"picture_root"} if task != "Trainer" else {"min_topic_count"}),
        }


def test_vertex_training_job_forms():
    single = vertex_training_job("p", "us-central1", IMAGE, replicas=1, accelerator=("NVIDIA_TESLA_T4", 1))
    (pool,) = single["ai_platform_training_args"]["worker_pool_specs"]
    assert pool["replica_count"] == 1
    assert pool["machine_spec"] == {
        "machine_type": "n1-standard-8",
        "accelerator_type": "NVIDIA_TESLA_T4",
        "accelerator_count": 1,
    }
    with pytest.raises(ValueError, match="at least one replica"):
        vertex_training_job("p", "us-central1", IMAGE, replicas=0)
    assert training_config({"ai_platform_enable_vertex": True, "epochs": 2}, DEFAULTS) == {**DEFAULTS, "epochs": 2}


def test_more_replicas_need_a_project(tmp_path):
    args, _ = compile_command(tmp_path, "--trainer-replicas", "2")
    with pytest.raises(SystemExit, match="needs --vertex-project"):
        args.run(args)


def test_the_picture_branch_compiles_for_kubeflow(tmp_path):
    args, output = compile_command(tmp_path, "--pictures", "--picture-threshold", "0.3")
    args.run(args)
    tasks = json.loads(output.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {
        "Trainer",
        "wclip_trainer",
        "RetrievalEvaluator",
        "PictureRetrievalEvaluator",
        "Pusher",
        "wclip_pusher",
    } <= tasks.keys()
    assert "AnomaliesGate" in tasks["wclip_trainer"]["dependentTasks"]
    inputs = tasks["PictureRetrievalEvaluator"]["inputs"]
    assert inputs["artifacts"]["baseline_model"]["taskOutputArtifact"]["producerTask"].startswith(
        "latest_blessed_wclip_resolver"
    )
    parameters = {name: value["runtimeValue"]["constantValue"] for name, value in inputs["parameters"].items()}
    assert parameters["picture_root"] == {"stringValue": "gs://bucket/weibo"}
    assert parameters["threshold"] == {"doubleValue": 0.3}
