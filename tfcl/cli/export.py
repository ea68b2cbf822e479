"""``tfcl export topics``: a trained CD-TOM's Weibo SavedModel for a new topic vocabulary, without retraining,
written as the next version of a TF Serving model base path (a server watching it loads the version)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from tfcl.cli.console import UserError

POST_INDEX_MODEL = "weibo_model"  # the Weibo SavedModel `tfcl train cdtom --out RUN` writes in its run folder
SERVING_BASE = "serving/weibo_topics"  # the default model base path, under the run folder


def register(subparsers: Any) -> None:
    """Add ``tfcl export`` (sub-command ``topics``) to the ``tfcl`` sub-command parsers."""
    parser = subparsers.add_parser("export", help="export a trained model again for serving, without retraining")
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    topics = kinds.add_parser(
        "topics",
        help="re-export a trained CD-TOM for a new topic vocabulary as the next TF Serving version",
        description="Write the Weibo SavedModel (predict_topics, rank_topics, embed_post, similar_posts) of a "
        "trained CD-TOM for the topics of FILE, keyed by the topic tower's embedding of each name, as version N+1 "
        "of the model base path OUT (N: its newest version; written aside, then renamed into place). The "
        "similar-post index is kept from an earlier export, not embedded again.",
    )
    topics.add_argument(
        "--model",
        required=True,
        metavar="RUN",
        help=f"the run folder of a trained CD-TOM: RUN/model.keras (what `tfcl train cdtom --out RUN` writes; the "
        f"pipeline Trainer's model run folder) and, unless --post-index, RUN/{POST_INDEX_MODEL}",
    )
    topics.add_argument(
        "--topics",
        required=True,
        metavar="FILE",
        help="the new vocabulary: one topic per line, or `topic<TAB>count` lines (the ingestion's topic_vocab.tsv)",
    )
    topics.add_argument(
        "--out", metavar="DIR", help=f"TF Serving model base path, holding <version>/ (default: RUN/{SERVING_BASE})"
    )
    topics.add_argument(
        "--post-index",
        metavar="DIR",
        help=f"a Weibo SavedModel (an earlier export or served version) whose similar-post index the new version "
        f"keeps (default: RUN/{POST_INDEX_MODEL})",
    )
    topics.add_argument("--k", type=int, default=10, help="topics per post of predict_topics (default: %(default)s)")
    topics.set_defaults(run=run_topics)


def read_topics(path: str | Path) -> list[str]:
    """The topics of ``path``, in file order without repeats: the text of each non-blank line before a TAB (so a
    ``topic<TAB>count`` vocabulary gives its topics); a :class:`UserError` when the file is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--topics {path}: no such file")
    lines = path.read_text(encoding="utf-8").splitlines()
    topics = list(dict.fromkeys(line.split("\t", 1)[0].strip() for line in lines))
    topics = [topic for topic in topics if topic]
    if not topics:
        raise UserError(f"--topics {path}: no topics in it (one per line, or `topic<TAB>count` lines)")
    return topics


def write_next_version(base_path: str | Path, write: Any) -> Path:
    """``write(folder)`` into a temporary folder inside ``base_path``, renamed to the next version number (one past
    the newest complete version; 1 in a new base path), so a server never loads it half written; returns it."""
    from tfcl.serving.config import complete_versions

    base = Path(base_path)
    base.mkdir(parents=True, exist_ok=True)
    version = max(complete_versions(base), default=0) + 1
    staging = Path(tempfile.mkdtemp(prefix=f".incoming-{version}-", dir=base))
    write(str(staging))
    return staging.rename(base / str(version))


def run_topics(args: argparse.Namespace) -> None:
    run_dir = Path(args.model)
    model_file = run_dir / "model.keras"
    post_index = Path(args.post_index or run_dir / POST_INDEX_MODEL)
    if args.k < 1:
        raise UserError("--k must be at least 1")
    if not model_file.is_file():
        raise UserError(f"--model {run_dir}: no model.keras in it (the run folder of `tfcl train cdtom --out RUN`)")
    if not (post_index / "saved_model.pb").is_file():
        raise UserError(
            f"{post_index}: not a SavedModel; give the Weibo SavedModel to keep the posts of (--post-index)"
        )
    topics = read_topics(args.topics)
    import keras

    import tfcl.models  # noqa: F401  (registers the model classes for deserialisation)
    from tfcl.apps.weibo import export_topic_vocabulary, served_post_index

    model = keras.saving.load_model(model_file)
    if not hasattr(model, "embed_topics"):
        raise UserError(f"--model {model_file}: a {type(model).__name__}, not a CD-TOM (no topic tower)")
    try:
        posts = served_post_index(str(post_index))
    except ValueError as error:
        raise UserError(str(error)) from None
    version = write_next_version(
        args.out or run_dir / SERVING_BASE, lambda path: export_topic_vocabulary(model, topics, posts, path, k=args.k)
    )
    print(f"exported {len(topics)} topics as version {version.name}: {version}")
