"""``tfcl train METHOD``: train a method with progress bar, TensorBoard logs, checkpoints and resume."""
from tfcl.strategy import STRATEGIES

IMAGE_DATASETS = ("fashion_mnist", "mnist_5k")  # labelled sets of tfcl.data.images.image_splits


def register(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a contrastive method (resumes from OUT/backup after an interrupted run)")
    parser.add_argument("method", help="an image method: simclr (`tfcl train list` shows all)")
    parser.add_argument("--data", default="fashion_mnist", choices=IMAGE_DATASETS)
    parser.add_argument("--out", default="runs/train", help="run folder: checkpoints, TensorBoard logs, model.keras")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps-per-epoch", type=int, help="default: one pass over the data")
    parser.add_argument("--batch-size", type=int, default=256, help="global batch size")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (default: the method's)")
    parser.add_argument("--encoder", default="resnet_cpu", help="resnet_cpu, resnet18, or a keras-hub preset")
    parser.add_argument("--strategy", default="default", choices=STRATEGIES)
    parser.add_argument("--tpu", help="TPU name or address for --strategy tpu")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 compute")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile the train step")
    parser.add_argument("--eval-every", type=int, default=1, help="kNN monitor every N epochs (0: off)")
    parser.set_defaults(run=run)


def run(args):
    import keras

    from tfcl.recipes.image import RECIPES

    if args.method not in RECIPES:
        print(f"tfcl train: methods: {', '.join(sorted(RECIPES))}")
        return 0 if args.method == "list" else 2

    from tfcl.data import images
    from tfcl.export import export_image_encoder
    from tfcl.strategy import make_strategy
    from tfcl.training import train_image_method

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    train, test = images.image_splits(args.data)
    eval_data = ((train[0][:10_000], train[1][:10_000]), test) if args.eval_every else None
    model, _ = train_image_method(
        args.method, train, out_dir=args.out, epochs=args.epochs, batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch, encoder=args.encoder, learning_rate=args.learning_rate,
        strategy=make_strategy(args.strategy, args.tpu), eval_data=eval_data, eval_every=args.eval_every or 1,
        jit_compile=args.jit_compile)
    export_image_encoder(model, f"{args.out}/encoder", channels=train[0].shape[-1])
    print(f"saved {args.out}/model.keras and the encoder SavedModel {args.out}/encoder")
