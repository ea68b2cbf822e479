"""``tfcl run``: the main job. ``tfcl pipeline compile``: the pipeline for Kubeflow Pipelines / Vertex AI.

    tfcl run [--input 'exports/*.jsonl'] [--posts 2000] [--work-dir runs/main] [--query TEXT ...] [--no-pictures]
    tfcl pipeline compile --kubeflow pipeline.json --pipeline-root gs://B/root --data-root gs://B/data \
        --serving-model-dir gs://B/serving --image IMAGE [--pictures] [--trainer-replicas 2 --vertex-project P]

``tfcl run`` writes the generated sample corpus (unless given ``--input``), runs the TFX pipeline locally
(ingest → statistics → schema → validation → CD-TOM and W-CLIP training → retrieval evaluation → push), starts the
embedded TF Serving on both pushed models (``weibo_topics``, ``weibo_pictures``) on a free loopback port, asks it
over gRPC for the topics of a few posts and for their similar posts, for a held-out post's pictures (博文配图片) and
for the posts of its picture, sent as bytes (图片配博文), prints the answers and stops the server. Run again with
unchanged inputs, the pipeline re-uses its cached results. ``--no-pictures`` leaves the W-CLIP branch out.

The console gets a line per pipeline step, the counts, the evaluation tables and the answers; every other tool's
output goes to ``WORK_DIR/tfcl.log`` (:mod:`tfcl.cli.console`). ``WORK_DIR/report.html`` (:mod:`tfcl.cli.report`)
holds the same with the training curves and the pictures; ``tfcl report WORK_DIR`` writes it again.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from tfcl.cli.console import LOG_FILE, UserError
from tfcl.strategy import STRATEGIES

# A CD-TOM small enough to train on the sample corpus in a few minutes on 2 CPU cores.
MAIN_JOB_TRAINER = {
    "epochs": 4,
    "batch_size": 64,
    "num_layers": 1,
    "num_heads": 2,
    "hidden_dim": 64,
    "intermediate_dim": 128,
    "vocabulary_size": 2000,
    "learning_rate": 1e-3,
}
# A W-CLIP of the same kind, on the sample's (post, picture) pairs.
MAIN_JOB_WCLIP = {
    "epochs": 4,
    "batch_size": 32,
    "image_size": 32,
    "text_length": 32,
    "num_layers": 1,
    "num_heads": 2,
    "hidden_dim": 64,
    "intermediate_dim": 128,
    "projection_dim": 32,
    "vocabulary_size": 2000,
    "learning_rate": 1e-3,
}
# The sample's posts have 11 distinct pictures, so a random ranking puts the right one in the top 5 half the time:
# the main job blesses on the top 1 (chance about 0.11; measured: benchmarks/results/recipe_choices.md).
PICTURE_METRIC, PICTURE_THRESHOLD = "t2i_recall@1", 0.5
SERVING_TIMEOUT = 300  # seconds for a model to load, and for a gRPC call


def register(subparsers: Any) -> None:
    """Add ``tfcl run`` and ``tfcl pipeline`` to the ``tfcl`` sub-command parsers."""
    run = subparsers.add_parser(
        "run",
        help="the main job: the TFX pipeline on the sample corpus, then TF Serving queried over gRPC",
        description="Run the TFX pipeline locally on the generated sample corpus (or --input), serve the pushed "
        "models with the embedded TF Serving and query them over gRPC: a post's topics, a post's similar posts, a "
        "post's pictures (博文配图片) and a picture's posts (图片配博文).",
    )
    run.add_argument(
        "--input",
        help="Weibo exports to use instead of the generated sample (a file or glob in one folder: JSON lines or CSV)",
    )
    run.add_argument("--posts", type=int, default=2000, help="posts of the generated sample (default %(default)s)")
    run.add_argument(
        "--work-dir",
        default="runs/main",
        help="pipeline artifacts, metadata.sqlite, serving/ model base (default %(default)s)",
    )
    run.add_argument("--epochs", type=int, default=MAIN_JOB_TRAINER["epochs"])
    run.add_argument("--strategy", default="default", choices=STRATEGIES)
    run.add_argument("--tpu", help="TPU name or address for --strategy tpu")
    run.add_argument("--threshold", type=float, default=0.5, help="hit@5 a model needs to be blessed and pushed")
    run.add_argument(
        "--no-pictures",
        action="store_true",
        help="leave out the W-CLIP branch (posts ↔ pictures) and the weibo_pictures model",
    )
    run.add_argument(
        "--picture-threshold",
        type=float,
        default=PICTURE_THRESHOLD,
        help=f"{PICTURE_METRIC} (post → pictures) a W-CLIP model needs to be blessed and pushed (default %(default)s)",
    )
    run.add_argument("--min-topic-count", type=int, default=5, help="train posts a vocabulary topic needs")
    run.add_argument(
        "--direct-num-workers",
        type=int,
        default=1,
        help="Beam DirectRunner processes for the data steps (default %(default)s)",
    )
    run.add_argument("--no-cache", action="store_true", help="execute every step even if its inputs are unchanged")
    run.add_argument(
        "--query",
        action="append",
        metavar="TEXT",
        help="a post to ask about (repeatable; default: two held-out posts of the eval split)",
    )
    run.add_argument("--top", type=int, default=5, help="answers to print per query (default %(default)s)")
    run.add_argument("--seed", type=int, default=0, help="seed of the trainers' weights and shuffling (default 0)")
    run.set_defaults(run=run_main_job, log_file=lambda args: os.path.join(args.work_dir, LOG_FILE))

    report = subparsers.add_parser("report", help="write a finished run's report.html again (from its report.json)")
    report.add_argument("run_dir", metavar="RUN_DIR", help="the --work-dir of a finished `tfcl run`")
    report.set_defaults(run=run_report)

    pipeline = subparsers.add_parser("pipeline", help="compile the TFX pipeline for an orchestrator")
    actions = pipeline.add_subparsers(dest="action", required=True, metavar="ACTION")
    compile_parser = actions.add_parser("compile", help="write the KubeflowV2DagRunner pipeline spec (JSON)")
    compile_parser.add_argument("--kubeflow", required=True, metavar="OUT.json", help="the pipeline spec to write")
    compile_parser.add_argument("--pipeline-root", required=True, help="where the steps write artifacts (gs://...)")
    compile_parser.add_argument("--data-root", required=True, help="the folder of the Weibo exports")
    compile_parser.add_argument("--input-pattern", default="*", help="files of --data-root to read")
    compile_parser.add_argument("--serving-model-dir", required=True, help="the TF Serving model base to push to")
    compile_parser.add_argument("--image", required=True, help="the container image: TFX 1.16 with tfcl installed")
    compile_parser.add_argument("--threshold", type=float, default=0.5, help="hit@5 needed to bless a model")
    compile_parser.add_argument("--strategy", default="multi_worker", choices=STRATEGIES)
    compile_parser.add_argument(
        "--pictures", action="store_true", help="add the W-CLIP branch (relative picture paths are under --data-root)"
    )
    compile_parser.add_argument(
        "--picture-threshold", type=float, default=0.5, help="t2i_recall@5 needed to bless a W-CLIP model"
    )
    compile_parser.add_argument(
        "--trainer-replicas",
        type=int,
        default=1,
        help="above 1: train as a Vertex AI job of that many workers (needs --vertex-project; default: in the step)",
    )
    compile_parser.add_argument("--vertex-project", help="the GCP project of the Vertex AI training jobs")
    compile_parser.add_argument("--vertex-region", default="us-central1", help="their region (default %(default)s)")
    compile_parser.add_argument(
        "--trainer-machine-type", default="n1-standard-8", help="each replica's machine (default %(default)s)"
    )
    compile_parser.set_defaults(run=run_compile)


def prepare_sample(path: str, posts: int) -> None:
    """Write the sample corpus to ``path`` unless it already holds those bytes (an unchanged file keeps its
    modification time, so the ExampleGen's input fingerprint and the pipeline's cache still match)."""
    from tfcl.data.weibo_sample import sample_lines

    content = b"".join(line + b"\n" for line in sample_lines(posts)[0])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path) or open(path, "rb").read() != content:
        with open(path, "wb") as file:
            file.write(content)


class StageLog(logging.Handler):
    """One console line per finished pipeline step (``LocalDagRunner`` logs "Component X is running." and "... is
    finished."): its time, and whether it re-used a cached execution. The steps are kept in :attr:`stages`."""

    def __init__(self, console: TextIO) -> None:
        super().__init__(logging.INFO)
        self.console = console
        self.stages: list[dict[str, Any]] = []
        self.running: tuple[str, float] | None = None
        self.cached = False

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Component ") and message.endswith(" is running."):
            self.running, self.cached = (message[len("Component ") : -len(" is running.")], time.monotonic()), False
        elif message.startswith("A cached execution"):
            self.cached = True
        elif message.startswith("Component ") and message.endswith(" is finished.") and self.running:
            name, started = self.running
            seconds = time.monotonic() - started
            self.stages.append(
                {"name": name, "seconds": round(seconds, 1), "result": "cached" if self.cached else "ran"}
            )
            self.console.write(f"  {name:<30} {seconds:6.1f} s{'  (cached)' if self.cached else ''}\n")
            self.console.flush()


def run_pipeline_quietly(console: TextIO, **options: Any) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """:func:`tfx_pipeline.runner.run_local` with a line per step on ``console`` and everything the steps print
    (Keras' epoch lines included) sent where the other tools' output goes; returns ``(paths, stages)``."""
    import contextlib

    import absl.logging

    from tfx_pipeline.runner import run_local

    stage_log = StageLog(console)
    verbosity = absl.logging.get_verbosity()
    absl.logging.set_verbosity(absl.logging.INFO)  # the steps' "Component X is running." lines
    logging.getLogger().addHandler(stage_log)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            paths = run_local(**options)
    finally:
        logging.getLogger().removeHandler(stage_log)
        absl.logging.set_verbosity(verbosity)
    return paths, stage_log.stages


def check_input(pattern: str) -> None:
    """A :class:`UserError` when ``--input`` matches no file, or only empty ones."""
    files = glob.glob(pattern)
    if not files:
        raise UserError(f"--input {pattern} matches no file: give a Weibo export (JSON lines or CSV) or a glob")
    if not any(os.path.getsize(file) for file in files):
        raise UserError(f"--input {pattern}: {len(files)} file(s), all empty: give an export that has posts")


def run_main_job(args: argparse.Namespace) -> int | None:
    """``tfcl run``: the pipeline on the sample corpus (or ``--input``), then the served models queried."""
    from tfx import v1 as tfx

    from tfcl.cli.evaluation import format_table
    from tfcl.cli.report import write_report
    from tfcl.data.post_pictures import NoPicturePairs
    from tfx_pipeline import components
    from tfx_pipeline.pipeline import MODEL_NAME, PICTURE_MODEL_NAME
    from tfx_pipeline.runner import latest_output

    started = time.monotonic()
    work_dir = os.path.abspath(args.work_dir)
    if args.input:
        check_input(os.path.abspath(args.input))
        data_root, pattern = os.path.split(os.path.abspath(args.input))
        source = f"input: {data_root}/{pattern}"
    else:
        data_root, pattern = os.path.join(work_dir, "data"), "weibo_sample.jsonl"
        prepare_sample(os.path.join(data_root, pattern), args.posts)
        source = f"sample corpus (generated, not Weibo data): {data_root}/{pattern}"
    print(source)
    strategy = {"strategy": args.strategy, "tpu": args.tpu, "seed": args.seed}
    trainer_config = {**MAIN_JOB_TRAINER, "epochs": args.epochs, **strategy}
    pictures = (
        None
        if args.no_pictures
        else {
            "trainer_config": {**MAIN_JOB_WCLIP, **strategy},
            "metric": PICTURE_METRIC,
            "threshold": args.picture_threshold,
        }
    )
    print("pipeline steps (a re-run with unchanged inputs re-uses their results):")
    try:
        paths, stages = run_pipeline_quietly(
            sys.stdout,
            work_dir=work_dir,
            data_root=data_root,
            input_pattern=pattern,
            direct_num_workers=args.direct_num_workers,
            trainer_config=trainer_config,
            threshold=args.threshold,
            min_topic_count=args.min_topic_count,
            enable_cache=not args.no_cache,
            pictures=pictures,
        )
    except components.AnomaliesFound as error:
        raise UserError(f"{error}; fix these in the input posts") from error
    except NoPicturePairs as error:
        raise UserError(f"{error}; --no-pictures runs without the pictures") from error
    pipeline_seconds = time.monotonic() - started
    metadata_path = paths["metadata_path"]
    artifacts = tfx.types.standard_artifacts
    examples = latest_output(metadata_path, "WeiboExampleGen", "examples", artifacts.Examples)
    counts = {
        name: examples.get_int_custom_property(components.COUNT_PREFIX + name)
        for name in ("read", "train", "eval", "dead_lettered", "duplicates")
    }
    print(f"pipeline finished in {pipeline_seconds:.0f} s; posts: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    tables = [topic_table(metadata_path)]
    histories = {"CD-TOM (Trainer)": read_history(metadata_path, "Trainer")}
    model_bases = {MODEL_NAME: os.path.join(paths["serving_model_dir"], MODEL_NAME)}
    if pictures:
        tables += picture_tables(metadata_path)
        histories["W-CLIP (wclip_trainer)"] = read_history(metadata_path, "wclip_trainer")
        model_bases[PICTURE_MODEL_NAME] = os.path.join(paths["serving_model_dir"], PICTURE_MODEL_NAME)
    for table in tables:
        if table.get("reference"):
            print(format_table(table["title"], table["rows"], table["reference"]))
        else:
            print(table["title"] + ": " + "; ".join(f"{row[0]} {row[1]}" for row in table["rows"]))
    train_posts = components.split_posts(examples, "train")
    eval_posts = components.split_posts(examples, "eval")
    queries = args.query or [post.document for post in eval_posts[:2]]
    answers = query_served_models(
        model_bases, queries, eval_posts, {post.id: post for post in train_posts}, data_root, args.top
    )
    seconds = time.monotonic() - started
    page = write_report(
        work_dir,
        {
            "title": f"tfcl run: {work_dir}",
            "notes": [source, f"posts: {counts}", f"main job finished in {seconds:.0f} s"],
            "stages": stages,
            "tables": [
                {"title": "posts", "columns": ["count", "posts"], "rows": [[k, n] for k, n in counts.items()]},
                *(report_table(table) for table in tables),
            ],
            "histories": {run: history for run, history in histories.items() if history},
            "answers": answers,
        },
    )
    print(f"\nreport: {page}")
    print(f"main job finished in {seconds:.0f} s")


def report_table(table: Mapping[str, Any]) -> dict[str, Any]:
    """A console table (``title``, ``rows``, ``reference``) in the report's form; one without a reference is
    the picture counts per split."""
    columns = ["metric", "model", table["reference"]] if table.get("reference") else ["split", "pictures"]
    return {"title": table["title"], "columns": columns, "rows": [list(row) for row in table["rows"]]}


def read_history(metadata_path: str, trainer: str) -> dict[str, list[float]]:
    """The Keras history (``history.json``) of the newest run of the ``trainer`` step; empty if there is none."""
    from tfx import v1 as tfx

    from tfx_pipeline.runner import latest_output

    model_run = latest_output(metadata_path, trainer, "model_run", tfx.types.standard_artifacts.ModelRun)
    path = model_run and os.path.join(model_run.uri, "history.json")
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def decision(blessing: Any) -> str:
    """How a ``ModelBlessing`` artifact decided, in words."""
    return (
        "blessed and pushed"
        if blessing.get_int_custom_property("blessed")
        else f"not blessed ({blessing.get_string_custom_property('reasons')})"
    )


def evaluation_report(metadata_path: str, evaluator: str) -> tuple[dict[str, Any], Any]:
    """The ``metrics.json`` of the newest run of ``evaluator`` and its blessing artifact."""
    from tfx import v1 as tfx

    from tfx_pipeline.runner import latest_output

    artifacts = tfx.types.standard_artifacts
    evaluation = latest_output(metadata_path, evaluator, "evaluation", artifacts.ModelEvaluation)
    blessing = latest_output(metadata_path, evaluator, "blessing", artifacts.ModelBlessing)
    with open(os.path.join(evaluation.uri, "metrics.json"), encoding="utf-8") as file:
        return json.load(file), blessing


def topic_table(metadata_path: str) -> dict[str, Any]:
    """CD-TOM's topic prediction and similar posts on the eval split, against the TF-IDF baseline."""
    report, blessing = evaluation_report(metadata_path, "RetrievalEvaluator")
    model, tfidf = report["model"], report.get("tfidf", {})
    return {
        "title": f"topics (eval split, {model.get('posts', '?')} posts): {decision(blessing)}",
        "reference": "TF-IDF",
        "rows": [(name, model[name], tfidf.get(name)) for name in sorted(model) if name not in ("posts", "queries")],
    }


def picture_tables(metadata_path: str) -> list[dict[str, Any]]:
    """The W-CLIP branch's picture counts (set-aside references by reason) and its retrieval against chance."""
    from tfx import v1 as tfx

    from tfcl.recipes.wclip import REPORT_FILE
    from tfx_pipeline.runner import latest_output

    model_run = latest_output(metadata_path, "wclip_trainer", "model_run", tfx.types.standard_artifacts.ModelRun)
    with open(os.path.join(model_run.uri, REPORT_FILE), encoding="utf-8") as file:
        counts = json.load(file)
    report, blessing = evaluation_report(metadata_path, "PictureRetrievalEvaluator")
    names = ("t2i_recall@1", "t2i_recall@5", "i2t_recall@1", "i2t_recall@5")
    return [
        {
            "title": "pictures",
            "rows": [
                (
                    split,
                    f"{c['pairs']} (post, picture) pairs of {c['references']} references, set aside {c['set_aside']}",
                )
                for split, c in counts.items()
            ],
        },
        {
            "title": f"pictures (eval split; t2i: post → pictures, i2t: picture → posts): {decision(blessing)}",
            "reference": "chance",
            "rows": [(name, report["model"][name], report["chance"][name]) for name in names],
        },
    ]


def query_served_models(
    model_bases: Mapping[str, str],
    queries: Sequence[str],
    eval_posts: Sequence[Any],
    posts_by_id: Mapping[str, Any],
    picture_root: str,
    top: int,
) -> list[dict[str, Any]]:
    """Serve the models of ``model_bases`` (``{name: base}``) with one embedded TF Serving and print, over gRPC,
    the topics and similar posts of ``queries``, and the pictures of a held-out post and the posts of its picture;
    returns the answers in the report's form (``title``, ``lines``, ``pictures``)."""
    from tensorflow_serving.config import model_server_config_pb2

    from tfcl.serving import ModelServer, ServingClient, single_model_config
    from tfcl.serving.server import complete_versions
    from tfx_pipeline.pipeline import MODEL_NAME, PICTURE_MODEL_NAME

    config = model_server_config_pb2.ModelServerConfig()
    for name, base in model_bases.items():
        if complete_versions(base):
            config.MergeFrom(single_model_config(name, base))
        else:
            print(f"no model version under {base} to serve: none was blessed")
    served = [model.name for model in config.model_config_list.config]
    answers: list[dict[str, Any]] = []
    if not served:
        return answers
    # Loading a model and the first call of a signature (traced then) take a while on a busy machine.
    with ModelServer(config, port=0) as server, ServingClient(server.address, timeout=SERVING_TIMEOUT) as client:
        for name in served:
            print(
                f"\nTF Serving gRPC at {server.address}: model {name} version "
                f"{max(client.wait_until_available(name, timeout=SERVING_TIMEOUT))}"
            )
        if MODEL_NAME in served:
            answers += topic_answers(client, MODEL_NAME, queries, posts_by_id, top)
        if PICTURE_MODEL_NAME in served:
            answers += picture_answers(client, PICTURE_MODEL_NAME, eval_posts, posts_by_id, picture_root, top)
    for answer in answers:
        print("\n" + answer["title"])
        print("\n".join(answer["lines"]))
    return answers


def topic_answers(
    client: Any, model_name: str, queries: Sequence[str], posts_by_id: Mapping[str, Any], top: int
) -> list[dict[str, Any]]:
    """The topics and the similar posts the served CD-TOM gives for each query."""
    topics = client.predict(model_name, {"texts": queries}, signature_name="predict_topics")
    similar = client.predict(model_name, {"texts": queries}, signature_name="similar_posts")
    answers = []
    for row, query in enumerate(queries):
        predicted = ", ".join(
            f"#{topic.decode()}# {score:.3f}"
            for topic, score in zip(topics["topics"][row][:top], topics["scores"][row][:top])
        )
        lines = [f"  博文预测话题 topics: {predicted}", "  找相似博文 similar posts:"]
        lines += post_lines(similar["post_ids"][row][:top], similar["scores"][row][:top], posts_by_id)
        answers.append({"title": f"博文 post: {query}", "lines": lines})
    return answers


def post_lines(post_ids: Sequence[bytes], scores: Sequence[float], posts_by_id: Mapping[str, Any]) -> list[str]:
    """One line per answered post: score, id, text."""
    lines = []
    for post_id, score in zip(post_ids, scores):
        post = posts_by_id.get(post_id.decode())
        lines.append(f"    {score:.3f} {post_id.decode()} {post.text if post else ''}")
    return lines


def picture_answers(
    client: Any,
    model_name: str,
    eval_posts: Sequence[Any],
    posts_by_id: Mapping[str, Any],
    picture_root: str,
    top: int,
) -> list[dict[str, Any]]:
    """博文配图片 for the first held-out post with a usable picture, 图片配博文 for that picture (its bytes); the
    answers' pictures are listed with their files for the report."""
    from tfcl.data.post_pictures import picture_path, post_text, read_pictures, resolve_pictures

    found, _ = resolve_pictures(eval_posts, picture_root)
    if not found:
        return [{"title": "no held-out post has a usable picture to query with", "lines": []}]
    index, ref, path = found[0]
    post = eval_posts[index]
    pictures = client.predict(model_name, {"texts": [post_text(post)]}, signature_name="pictures_for_post")
    picture_ids = [picture_id.decode() for picture_id in pictures["picture_ids"][0][:top]]
    files = {ref: picture_path(ref, picture_root) for ref in picture_ids}
    posts = client.predict(model_name, {"pictures": read_pictures([path])}, signature_name="posts_for_picture")
    return [
        {
            "title": f"博文 post (held out): {post.text}",
            "lines": [f"  博文配图片 pictures for the post (its own: {', '.join(post.pictures)}):"]
            + [f"    {score:.3f} {picture_id}" for picture_id, score in zip(picture_ids, pictures["scores"][0])],
            "pictures": [
                [f"{score:.3f} {picture_id}", files[picture_id]]
                for picture_id, score in zip(picture_ids, pictures["scores"][0])
                if files[picture_id]
            ],
        },
        {
            "title": f"图片 picture: {ref} (the bytes of {path})",
            "lines": ["  图片配博文 posts for the picture:"]
            + post_lines(posts["post_ids"][0][:top], posts["scores"][0][:top], posts_by_id),
            "pictures": [[ref, path]],
        },
    ]


def run_report(args: argparse.Namespace) -> None:
    """``tfcl report RUN_DIR``: write ``report.html`` again from the run's ``report.json``."""
    from tfcl.cli.report import REPORT_DATA, rewrite_report

    if not os.path.exists(os.path.join(args.run_dir, REPORT_DATA)):
        raise UserError(f"{args.run_dir} has no {REPORT_DATA}: give the --work-dir of a finished `tfcl run`")
    print(f"report: {rewrite_report(args.run_dir)}")


def run_compile(args: argparse.Namespace) -> None:
    from tfx_pipeline.pipeline import vertex_training_job
    from tfx_pipeline.runner import compile_kubeflow_v2

    vertex_training = None
    if args.trainer_replicas > 1:
        if not args.vertex_project:
            raise SystemExit("tfcl pipeline compile: --trainer-replicas above 1 needs --vertex-project")
        vertex_training = vertex_training_job(
            args.vertex_project, args.vertex_region, args.image, args.trainer_replicas, args.trainer_machine_type
        )

    compile_kubeflow_v2(
        args.kubeflow,
        pipeline_root=args.pipeline_root,
        data_root=args.data_root,
        serving_model_dir=args.serving_model_dir,
        image=args.image,
        input_pattern=args.input_pattern,
        threshold=args.threshold,
        trainer_config={"strategy": args.strategy},
        pictures={"trainer_config": {"strategy": args.strategy}, "threshold": args.picture_threshold}
        if args.pictures
        else None,
        vertex_training=vertex_training,
    )
    print(f"wrote {args.kubeflow}")
