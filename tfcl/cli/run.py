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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

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
    run.set_defaults(run=run_main_job)

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


def run_main_job(args: argparse.Namespace) -> int | None:
    """``tfcl run``: the pipeline on the sample corpus (or ``--input``), then the served models queried."""
    from tfx import v1 as tfx

    from tfcl.data.post_pictures import NoPicturePairs
    from tfx_pipeline import components
    from tfx_pipeline.pipeline import MODEL_NAME, PICTURE_MODEL_NAME
    from tfx_pipeline.runner import latest_output, run_local

    started = time.monotonic()
    work_dir = os.path.abspath(args.work_dir)
    if args.input:
        data_root, pattern = os.path.split(os.path.abspath(args.input))
    else:
        data_root, pattern = os.path.join(work_dir, "data"), "weibo_sample.jsonl"
        prepare_sample(os.path.join(data_root, pattern), args.posts)
        print(f"sample corpus (generated, not Weibo data): {data_root}/{pattern}")
    strategy = {"strategy": args.strategy, "tpu": args.tpu}
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
    log_path = os.path.join(work_dir, "pipeline.log")
    try:
        with stderr_to(log_path):
            paths = run_local(
                work_dir,
                data_root,
                input_pattern=pattern,
                direct_num_workers=args.direct_num_workers,
                trainer_config=trainer_config,
                threshold=args.threshold,
                min_topic_count=args.min_topic_count,
                enable_cache=not args.no_cache,
                pictures=pictures,
            )
    except (components.AnomaliesFound, NoPicturePairs) as error:
        hint = " (--no-pictures runs without them)" if isinstance(error, NoPicturePairs) else ""
        print(f"tfcl run: error: {error}{hint}; the pipeline's log: {log_path}", file=sys.stderr)
        return 1
    pipeline_seconds = time.monotonic() - started
    metadata_path = paths["metadata_path"]
    artifacts = tfx.types.standard_artifacts
    examples = latest_output(metadata_path, "WeiboExampleGen", "examples", artifacts.Examples)
    blessing = latest_output(metadata_path, "RetrievalEvaluator", "blessing", artifacts.ModelBlessing)
    print(
        f"pipeline finished in {pipeline_seconds:.0f} s; ingestion: "
        + ", ".join(
            f"{name} {examples.get_int_custom_property(components.COUNT_PREFIX + name)}"
            for name in ("read", "train", "eval", "dead_lettered", "duplicates")
        )
    )
    print(f"topics evaluation: hit@5 {blessing.get_float_custom_property('hit@5'):.3f}, {decision(blessing)}")
    model_bases = {MODEL_NAME: os.path.join(paths["serving_model_dir"], MODEL_NAME)}
    if pictures:
        print_picture_summary(metadata_path)
        model_bases[PICTURE_MODEL_NAME] = os.path.join(paths["serving_model_dir"], PICTURE_MODEL_NAME)
    train_posts = components.split_posts(examples, "train")
    eval_posts = components.split_posts(examples, "eval")
    queries = args.query or [post.document for post in eval_posts[:2]]
    query_served_models(model_bases, queries, eval_posts, {post.id: post for post in train_posts}, data_root, args.top)
    print(f"main job finished in {time.monotonic() - started:.0f} s")


@contextlib.contextmanager
def stderr_to(path: str) -> Iterator[None]:
    """Send what this process and its children write to stderr (TFX's, Beam's and setuptools' notices) to ``path``
    while the block runs; what the command itself says goes to stderr after it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "wb") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def decision(blessing: Any) -> str:
    """How a ``ModelBlessing`` artifact decided, in words."""
    return (
        "blessed and pushed"
        if blessing.get_int_custom_property("blessed")
        else f"not blessed ({blessing.get_string_custom_property('reasons')})"
    )


def print_picture_summary(metadata_path: str) -> None:
    """The W-CLIP branch's picture counts (set-aside references by reason) and evaluation, against chance."""
    from tfx import v1 as tfx

    from tfcl.recipes.wclip import REPORT_FILE
    from tfx_pipeline.runner import latest_output

    artifacts = tfx.types.standard_artifacts
    model_run = latest_output(metadata_path, "wclip_trainer", "model_run", artifacts.ModelRun)
    evaluation = latest_output(metadata_path, "PictureRetrievalEvaluator", "evaluation", artifacts.ModelEvaluation)
    blessing = latest_output(metadata_path, "PictureRetrievalEvaluator", "blessing", artifacts.ModelBlessing)
    with open(os.path.join(model_run.uri, REPORT_FILE), encoding="utf-8") as file:
        counts = json.load(file)
    with open(os.path.join(evaluation.uri, "metrics.json"), encoding="utf-8") as file:
        report = json.load(file)
    print(
        "pictures: "
        + "; ".join(
            f"{split} {counts[split]['pairs']} (post, picture) pairs of "
            f"{counts[split]['references']} references, set aside {counts[split]['set_aside']}"
            for split in counts
        )
    )
    print(
        "pictures evaluation: "
        + ", ".join(
            f"{name} {report['model'][name]:.3f} (chance {report['chance'][name]:.3f})"
            for name in ("t2i_recall@1", "t2i_recall@5", "i2t_recall@5")
        )
        + f", {decision(blessing)}"
    )


def query_served_models(
    model_bases: Mapping[str, str],
    queries: Sequence[str],
    eval_posts: Sequence[Any],
    posts_by_id: Mapping[str, Any],
    picture_root: str,
    top: int,
) -> None:
    """Serve the models of ``model_bases`` (``{name: base}``) with one embedded TF Serving and print, over gRPC,
    the topics and similar posts of ``queries``, and the pictures of a held-out post and the posts of its picture."""
    from tensorflow_serving.config import model_server_config_pb2

    from tfcl.serving import ModelServer, ServingClient, single_model_config
    from tfcl.serving.server import complete_versions
    from tfx_pipeline.pipeline import MODEL_NAME, PICTURE_MODEL_NAME

    config = model_server_config_pb2.ModelServerConfig()
    for name, base in model_bases.items():
        if complete_versions(base):
            config.MergeFrom(single_model_config(name, base))
        else:
            print(f"tfcl run: no model version under {base} to serve: none was blessed", file=sys.stderr)
    served = [model.name for model in config.model_config_list.config]
    if not served:
        return
    # Loading a model and the first call of a signature (traced then) take a while on a busy machine.
    with ModelServer(config, port=0) as server, ServingClient(server.address, timeout=SERVING_TIMEOUT) as client:
        for name in served:
            print(
                f"\nTF Serving gRPC at {server.address}: model {name} version "
                f"{max(client.wait_until_available(name, timeout=SERVING_TIMEOUT))}"
            )
        if MODEL_NAME in served:
            print_topic_answers(client, MODEL_NAME, queries, posts_by_id, top)
        if PICTURE_MODEL_NAME in served:
            print_picture_answers(client, PICTURE_MODEL_NAME, eval_posts, posts_by_id, picture_root, top)


def print_topic_answers(
    client: Any, model_name: str, queries: Sequence[str], posts_by_id: Mapping[str, Any], top: int
) -> None:
    """The topics and the similar posts the served CD-TOM gives for each query."""
    topics = client.predict(model_name, {"texts": queries}, signature_name="predict_topics")
    similar = client.predict(model_name, {"texts": queries}, signature_name="similar_posts")
    for row, query in enumerate(queries):
        print(f"\n博文 post: {query}")
        print(
            "  博文预测话题 topics: "
            + ", ".join(
                f"#{topic.decode()}# {score:.3f}"
                for topic, score in zip(topics["topics"][row][:top], topics["scores"][row][:top])
            )
        )
        print("  找相似博文 similar posts:")
        print_posts(similar["post_ids"][row][:top], similar["scores"][row][:top], posts_by_id)


def print_posts(post_ids: Sequence[bytes], scores: Sequence[float], posts_by_id: Mapping[str, Any]) -> None:
    """One line per answered post: score, id, text."""
    for post_id, score in zip(post_ids, scores):
        post = posts_by_id.get(post_id.decode())
        print(f"    {score:.3f} {post_id.decode()} {post.text if post else ''}")


def print_picture_answers(
    client: Any,
    model_name: str,
    eval_posts: Sequence[Any],
    posts_by_id: Mapping[str, Any],
    picture_root: str,
    top: int,
) -> None:
    """博文配图片 for the first held-out post with a usable picture, 图片配博文 for that picture (its bytes)."""
    from tfcl.data.post_pictures import post_text, read_pictures, resolve_pictures

    found, _ = resolve_pictures(eval_posts, picture_root)
    if not found:
        print("\nno held-out post has a usable picture to query with")
        return
    index, ref, path = found[0]
    post = eval_posts[index]
    pictures = client.predict(model_name, {"texts": [post_text(post)]}, signature_name="pictures_for_post")
    print(
        f"\n博文 post (held out): {post.text}\n"
        f"  博文配图片 pictures for the post (its own: {', '.join(post.pictures)}):"
    )
    for picture_id, score in zip(pictures["picture_ids"][0][:top], pictures["scores"][0][:top]):
        print(f"    {score:.3f} {picture_id.decode()}")
    posts = client.predict(model_name, {"pictures": read_pictures([path])}, signature_name="posts_for_picture")
    print(f"\n图片 picture: {ref} (the bytes of {path})\n  图片配博文 posts for the picture:")
    print_posts(posts["post_ids"][0][:top], posts["scores"][0][:top], posts_by_id)


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
