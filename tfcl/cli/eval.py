"""``tfcl eval knn|linear``: evaluate a trained model's frozen encoder on its image data set.
``tfcl eval text``: the Chinese text suite (:mod:`tfcl.eval.text_zh`) for a text tower, or for the TF-IDF baseline.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfcl.cli.console import LOG_FILE, UserError
from tfcl.cli.train import IMAGE_DATASETS

if TYPE_CHECKING:
    import numpy as np

    from tfcl.eval.text_similarity import Embed

PRESET_SEQUENCE_LENGTH = 128  # a preset's texts are cut to this many tokens (or its own maximum, if shorter)
TEXT_JSON = "eval_text.json"  # written beside the model (or in the working directory for --tfidf) unless --json


def register(subparsers: Any) -> None:
    """Add ``tfcl eval`` to the ``tfcl`` sub-command parsers."""
    parser = subparsers.add_parser(
        "eval", help="evaluate a trained model's frozen encoder (kNN or linear probe; the Chinese text suite)"
    )
    parser.add_argument("protocol", choices=("knn", "linear", "text"))
    parser.add_argument(
        "--model",
        help="knn/linear: a model.keras written by `tfcl train`; text: a text method's model.keras, a SavedModel "
        "export with an `embed` signature, or a keras-hub BERT preset folder",
    )
    parser.add_argument("--data", default="fashion_mnist", choices=IMAGE_DATASETS)
    parser.add_argument("--k", type=int, default=20, help="kNN neighbours")
    parser.add_argument("--temperature", type=float, default=0.1, help="kNN vote temperature")
    parser.add_argument("--epochs", type=int, default=30, help="linear-probe epochs")
    parser.add_argument("--tfidf", action="store_true", help="text: evaluate the TF-IDF baseline instead of --model")
    parser.add_argument("--tasks", help="text: a comma-separated subset of the suite's tasks (default: all)")
    parser.add_argument("--limit", type=int, help="text: at most this many examples per task (a quick check)")
    parser.add_argument("--probe-c", type=float, help="text: the probes' C (default: chosen on the training split)")
    parser.add_argument("--batch-size", type=int, default=256, help="text: texts embedded at a time")
    parser.add_argument("--json", help=f"also write the result here (text: default {TEXT_JSON} beside the model)")
    parser.set_defaults(run=run, log_file=log_file)


def log_file(args: argparse.Namespace) -> str | None:
    """The log beside the model (or beside --json for the TF-IDF baseline)."""
    anchor = args.model or args.json
    return f"{os.path.dirname(os.path.abspath(anchor))}/{LOG_FILE}" if anchor else None


def run(args: argparse.Namespace) -> None:
    if args.protocol == "text":
        return run_text(args)
    if not args.model:
        raise UserError(f"`tfcl eval {args.protocol}` needs --model (a model.keras written by `tfcl train`).")
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


def run_text(args: argparse.Namespace) -> None:
    from tfcl.cli.evaluation import format_table
    from tfcl.data.zh_text import SharedDataNotFoundError
    from tfcl.eval.text_zh import METRICS, TASKS, TOPIC_NEIGHBOURS, CharTfidf, evaluate_text

    if bool(args.model) == args.tfidf:
        raise UserError("`tfcl eval text` takes --model PATH or --tfidf (one of them).")
    tasks = TASKS if args.tasks is None else tuple(task.strip() for task in args.tasks.split(",") if task.strip())
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        raise UserError(f"--tasks: unknown {unknown or 'empty list'}; choose from {','.join(TASKS)}")
    least = TOPIC_NEIGHBOURS + 1 if "weibo_topic" in tasks else 1
    if args.limit is not None and args.limit < least:
        raise UserError(f"--limit must be at least {least} for the tasks {','.join(tasks)}, got {args.limit}")
    representation = CharTfidf() if args.tfidf else load_text_embed(args.model, args.batch_size)
    try:
        result = evaluate_text(representation, tasks, limit=args.limit, probe_C=args.probe_c)
    except SharedDataNotFoundError as error:
        raise UserError(str(error)) from None
    name = "TF-IDF (character 1-2-grams)" if args.tfidf else args.model
    rows = [(key, result[key], None) for key in METRICS if key in result]
    print(format_table(f"Chinese text suite: {name}", rows, reference=""))
    for task, reasons in result["skipped"].items():
        print(f"  skipped in {task}: " + ", ".join(f"{count} {reason}" for reason, count in reasons.items()))
    path = Path(args.json or (Path(args.model).resolve().parent if args.model else Path.cwd()) / TEXT_JSON)
    path.write_text(json.dumps({"model": "tfidf" if args.tfidf else args.model, **result}, indent=1))
    print(f"wrote {path}")


def load_text_embed(path: str, batch_size: int = 256) -> Embed:
    """``embed(texts) -> [n, d]`` of the text tower at ``path``: a keras-hub BERT preset folder (``config.json``;
    mean pooling, :data:`PRESET_SEQUENCE_LENGTH` tokens), a SavedModel (its ``embed`` / ``embed_post`` signature),
    or a ``.keras`` text method (its ``text_encoder``, else its ``encoder``) or text encoder."""
    import tensorflow as tf

    from tfcl.eval.batches import predict_in_batches
    from tfcl.eval.text_similarity import encoder_embed

    folder = Path(path)
    if folder.is_dir() and (folder / "saved_model.pb").is_file():
        loaded = tf.saved_model.load(str(folder))
        name = next((name for name in ("embed", "embed_post") if name in loaded.signatures), None)
        if name is None:
            raise UserError(
                f"{path}: the SavedModel has no `embed` or `embed_post` signature ({list(loaded.signatures)})."
            )
        signature = loaded.signatures[name]
        (input_name, spec), *others = signature.structured_input_signature[1].items()
        if others or spec.dtype != tf.string:
            raise UserError(f"{path}: its `{name}` signature does not take one batch of texts.")

        def embed(texts: Sequence[str]) -> np.ndarray:
            outputs = predict_in_batches(lambda batch: signature(**{input_name: batch}), list(texts), batch_size)
            return outputs["embedding"]

        return embed
    if folder.is_dir() and (folder / "config.json").is_file():
        from tfcl.text import TextEncoder

        try:
            backbone = json.loads((folder / "config.json").read_text())["config"]
            length = min(PRESET_SEQUENCE_LENGTH, backbone["max_sequence_length"])
            return encoder_embed(TextEncoder.from_preset(str(folder), sequence_length=length), batch_size)
        except (ValueError, KeyError, FileNotFoundError) as error:
            raise UserError(f"{path}: not a keras-hub BERT preset this tower can load ({error}).") from None
    if folder.suffix == ".keras" and folder.is_file():
        import keras

        import tfcl.models  # noqa: F401  (registers the model classes for deserialisation)

        model = keras.saving.load_model(str(folder))
        tower = next((getattr(model, name) for name in ("text_encoder", "encoder") if hasattr(model, name)), model)
        try:
            tower(tf.constant(["检查"]), training=False)
        except Exception as error:
            raise UserError(
                f"{path}: its {type(tower).__name__} does not take texts ({type(error).__name__})."
            ) from None
        return encoder_embed(tower, batch_size)
    raise UserError(
        f"--model {path}: expected a model.keras file, a SavedModel folder (saved_model.pb) or a keras-hub preset "
        "folder (config.json)."
    )
