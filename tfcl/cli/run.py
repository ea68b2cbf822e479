"""``tfcl run``: the main job. ``tfcl pipeline compile``: the pipeline for Kubeflow Pipelines / Vertex AI.

    tfcl run [--input 'exports/*.jsonl'] [--posts 2000] [--work-dir runs/main] [--query TEXT ...]
    tfcl pipeline compile --kubeflow pipeline.json --pipeline-root gs://B/root --data-root gs://B/data \
        --serving-model-dir gs://B/serving --image IMAGE

``tfcl run`` writes the generated sample corpus (unless given ``--input``), runs the TFX pipeline locally
(ingest → statistics → schema → validation → CD-TOM training → retrieval evaluation → push), starts the embedded
TF Serving on the pushed model base on a free loopback port, asks it over gRPC for the topics of a few posts and
for their similar posts, prints the answers and stops the server. Run again with unchanged inputs, the pipeline
re-uses its cached results.
"""
import os
import sys
import time

from tfcl.strategy import STRATEGIES

# A CD-TOM small enough to train on the sample corpus in a few minutes on 2 CPU cores.
MAIN_JOB_TRAINER = {"epochs": 4, "batch_size": 64, "num_layers": 1, "num_heads": 2, "hidden_dim": 64,
                    "intermediate_dim": 128, "vocabulary_size": 2000, "learning_rate": 1e-3}


def register(subparsers):
    run = subparsers.add_parser(
        "run", help="the main job: the TFX pipeline on the sample corpus, then TF Serving queried over gRPC",
        description="Run the TFX pipeline locally on the generated sample corpus (or --input), serve the pushed "
        "model with the embedded TF Serving and query it over gRPC: a post's topics, a post's similar posts.")
    run.add_argument("--input", help="Weibo exports to use instead of the generated sample (a file or glob in one "
                                     "folder: JSON lines or CSV)")
    run.add_argument("--posts", type=int, default=2000, help="posts of the generated sample (default %(default)s)")
    run.add_argument("--work-dir", default="runs/main",
                     help="pipeline artifacts, metadata.sqlite, serving/ model base (default %(default)s)")
    run.add_argument("--epochs", type=int, default=MAIN_JOB_TRAINER["epochs"])
    run.add_argument("--strategy", default="default", choices=STRATEGIES)
    run.add_argument("--tpu", help="TPU name or address for --strategy tpu")
    run.add_argument("--threshold", type=float, default=0.5, help="hit@5 a model needs to be blessed and pushed")
    run.add_argument("--min-topic-count", type=int, default=5, help="train posts a vocabulary topic needs")
    run.add_argument("--direct-num-workers", type=int, default=1,
                     help="Beam DirectRunner processes for the data steps (default %(default)s)")
    run.add_argument("--no-cache", action="store_true", help="execute every step even if its inputs are unchanged")
    run.add_argument("--query", action="append", metavar="TEXT",
                     help="a post to ask about (repeatable; default: two held-out posts of the eval split)")
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
    compile_parser.set_defaults(run=run_compile)


def prepare_sample(path, posts):
    """Write the sample corpus to ``path`` unless it already holds those bytes (an unchanged file keeps its
    modification time, so the ExampleGen's input fingerprint and the pipeline's cache still match)."""
    from tfcl.data.weibo_sample import sample_lines

    content = b"".join(line + b"\n" for line in sample_lines(posts)[0])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path) or open(path, "rb").read() != content:
        with open(path, "wb") as file:
            file.write(content)


def run_main_job(args):
    from tfx import v1 as tfx

    from tfx_pipeline import components
    from tfx_pipeline.pipeline import MODEL_NAME
    from tfx_pipeline.runner import latest_output, run_local

    started = time.monotonic()
    work_dir = os.path.abspath(args.work_dir)
    if args.input:
        data_root, pattern = os.path.split(os.path.abspath(args.input))
    else:
        data_root, pattern = os.path.join(work_dir, "data"), "weibo_sample.jsonl"
        prepare_sample(os.path.join(data_root, pattern), args.posts)
        print(f"sample corpus (generated, not Weibo data): {data_root}/{pattern}")
    trainer_config = {**MAIN_JOB_TRAINER, "epochs": args.epochs, "strategy": args.strategy, "tpu": args.tpu}
    try:
        paths = run_local(work_dir, data_root, input_pattern=pattern, direct_num_workers=args.direct_num_workers,
                          trainer_config=trainer_config, threshold=args.threshold,
                          min_topic_count=args.min_topic_count, enable_cache=not args.no_cache)
    except components.AnomaliesFound as error:
        print(f"tfcl run: error: {error}", file=sys.stderr)
        return 1
    pipeline_seconds = time.monotonic() - started
    artifacts = tfx.types.standard_artifacts
    examples = latest_output(paths["metadata_path"], "WeiboExampleGen", "examples", artifacts.Examples)
    blessing = latest_output(paths["metadata_path"], "RetrievalEvaluator", "blessing", artifacts.ModelBlessing)
    print(f"pipeline finished in {pipeline_seconds:.0f} s; ingestion: "
          + ", ".join(f"{name} {examples.get_int_custom_property(components.COUNT_PREFIX + name)}"
                      for name in ("read", "train", "eval", "dead_lettered", "duplicates")))
    print(f"evaluation: hit@5 {blessing.get_float_custom_property('hit@5'):.3f}, "
          + ("blessed and pushed" if blessing.get_int_custom_property("blessed")
             else f"not blessed ({blessing.get_string_custom_property('reasons')})"))
    model_base = os.path.join(paths["serving_model_dir"], MODEL_NAME)
    train_posts = components.split_posts(examples, "train")
    queries = args.query or [post.document for post in components.split_posts(examples, "eval")[:2]]
    query_served_model(MODEL_NAME, model_base, queries, {post.id: post for post in train_posts}, args.top)
    print(f"main job finished in {time.monotonic() - started:.0f} s")


def query_served_model(model_name, model_base, queries, posts_by_id, top):
    """Serve ``model_base`` with the embedded TF Serving and print its answers to ``queries`` over gRPC."""
    from tfcl.serving import ModelServer, ServingClient, single_model_config
    from tfcl.serving.server import complete_versions

    if not complete_versions(model_base):
        print(f"tfcl run: no model version under {model_base} to serve: none was blessed", file=sys.stderr)
        return
    with ModelServer(single_model_config(model_name, model_base), port=0) as server, \
            ServingClient(server.address) as client:
        version = max(client.wait_until_available(model_name))
        print(f"\nTF Serving gRPC at {server.address}: model {model_name} version {version}")
        topics = client.predict(model_name, {"texts": queries}, signature_name="predict_topics")
        similar = client.predict(model_name, {"texts": queries}, signature_name="similar_posts")
        for row, query in enumerate(queries):
            print(f"\n博文 post: {query}")
            print("  博文预测话题 topics: " + ", ".join(
                f"#{topic.decode()}# {score:.3f}" for topic, score in
                zip(topics["topics"][row][:top], topics["scores"][row][:top])))
            print("  找相似博文 similar posts:")
            for post_id, score in zip(similar["post_ids"][row][:top], similar["scores"][row][:top]):
                post = posts_by_id.get(post_id.decode())
                print(f"    {score:.3f} {post_id.decode()} {post.text if post else ''}")


def run_compile(args):
    from tfx_pipeline.runner import compile_kubeflow_v2

    compile_kubeflow_v2(args.kubeflow, pipeline_root=args.pipeline_root, data_root=args.data_root,
                        serving_model_dir=args.serving_model_dir, image=args.image, input_pattern=args.input_pattern,
                        threshold=args.threshold, trainer_config={"strategy": args.strategy})
    print(f"wrote {args.kubeflow}")
