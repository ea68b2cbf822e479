"""``tfcl eval knn|linear``: evaluate a trained model's frozen encoder on its image data set."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from tfcl.cli.console import LOG_FILE
from tfcl.cli.train import IMAGE_DATASETS


def register(subparsers: Any) -> None:
    """Add ``tfcl eval`` to the ``tfcl`` sub-command parsers."""
    parser = subparsers.add_parser("eval", help="evaluate a trained model's frozen encoder (kNN or linear probe)")
    parser.add_argument("protocol", choices=("knn", "linear"))
    parser.add_argument("--model", required=True, help="a model.keras written by `tfcl train`")
    parser.add_argument("--data", default="fashion_mnist", choices=IMAGE_DATASETS)
    parser.add_argument("--k", type=int, default=20, help="kNN neighbours")
    parser.add_argument("--temperature", type=float, default=0.1, help="kNN vote temperature")
    parser.add_argument("--epochs", type=int, default=30, help="linear-probe epochs")
    parser.add_argument("--json", help="also write the result here")
    parser.set_defaults(run=run, log_file=lambda args: f"{os.path.dirname(os.path.abspath(args.model))}/{LOG_FILE}")


def run(args: argparse.Namespace) -> None:
    import keras

    import tfcl.models  # noqa: F401  (registers the model classes for deserialisation)
    from tfcl.data.images import image_splits
    from tfcl.eval import evaluate_encoder

    model = keras.saving.load_model(args.model)
    options = {"k": args.k, "temperature": args.temperature} if args.protocol == "knn" else {"epochs": args.epochs}
    result = evaluate_encoder(model.encoder, *image_splits(args.data), args.protocol, **options)
    print(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"protocol": result.protocol, "top1": result.top1, "data": args.data}, f)
