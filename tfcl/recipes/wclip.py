"""W-CLIP: CLIP on Weibo posts and their pictures, with in-batch (CLIP) or queued (WenLan) negatives.

The (post, picture) pairs are those of :func:`tfcl.data.post_pictures.post_picture_pairs`; a picture reference
with no file, or whose file does not decode, is set aside with its reason: :func:`train_wclip` writes them to
``picture_dead_letters.jsonl`` and counts them in ``pictures.json``. Which image–text method trains (its
negatives) is the recipe's (:func:`tfcl.registry.wclip_recipe`). Trained models are served by
:func:`tfcl.apps.pictures.export_wclip` and scored by :func:`tfcl.eval.image_text.evaluate_picture_model`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from tfcl.data.images import decode_files
from tfcl.data.post_pictures import (
    CHECK_SIZE,
    NoPicturePairs,
    pairs_report,
    post_picture_pairs,
    post_text,
    retrieval_entities,
)
from tfcl.data.weibo import WeiboPost
from tfcl.eval.image_text import chance_metrics, pair_retrieval_metrics
from tfcl.recipes.base import NotEnoughData, Recipe, Trained, TrainSettings
from tfcl.recipes.cdtom import ingested_posts
from tfcl.recipes.image_text import fit_pairs, pair_batches, train_on_picture_text_pairs
from tfcl.text import learn_vocabulary

DEAD_LETTERS_FILE = "picture_dead_letters.jsonl"
REPORT_FILE = "pictures.json"
METRICS_FILE = "metrics.json"


def build_wclip(recipe: Recipe, vocabulary: Sequence[str] | str | None, **options: Any) -> keras.Model:
    """A built W-CLIP: the image–text ``recipe``'s model (CLIP: in-batch negatives, WenLan: queued), taking
    pictures of at least :data:`~tfcl.data.post_pictures.CHECK_SIZE` pixels."""
    if options.get("image_size", CHECK_SIZE) < CHECK_SIZE:
        raise ValueError(f"image_size must be at least {CHECK_SIZE}, got {options['image_size']}")
    return recipe.build_model(vocabulary, **options)


def wclip_batches(
    pairs: dict[str, Any], model: keras.Model, batch_size: int, shuffle_seed: int | None = None
) -> tf.data.Dataset:
    """:func:`~tfcl.recipes.image_text.pair_batches` of ``pairs`` (:func:`post_picture_pairs`), pictures decoded
    at the model's size."""
    images = decode_files(pairs["picture"], model.encoder.image_size)
    return pair_batches(images, pairs["text"], model, batch_size, pairs["pair_ids"], shuffle_seed)


def train_wclip(
    recipe: Recipe,
    train_posts: Iterable[WeiboPost],
    eval_posts: Iterable[WeiboPost],
    out_dir: str | Path,
    *,
    picture_root: str | None = None,
    strategy: tf.distribute.Strategy | None = None,
    epochs: int = 10,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    learning_rate: float | None = None,
    weight_decay: float | None = None,
    vocabulary: Sequence[str] | str = "learned",
    vocabulary_size: int = 2000,
    seed: int = 0,
    verbose: int = 1,
    **model_options: Any,
) -> tuple[keras.Model, keras.callbacks.History]:
    """Train W-CLIP (the image–text ``recipe``) on the (post, picture) pairs of ``train_posts``; returns
    ``(model, history)``.

    ``out_dir`` gets :data:`DEAD_LETTERS_FILE` (each picture reference set aside, with its split and reason),
    :data:`REPORT_FILE` (:func:`~tfcl.data.post_pictures.pairs_report` per split), what
    :func:`tfcl.training.fit_and_save` writes (resume from ``backup/``, TensorBoard ``logs/``, ``model.keras``,
    ``history.json``) and, if ``eval_posts`` have pairs, :data:`METRICS_FILE`
    (:func:`~tfcl.eval.image_text.pair_retrieval_metrics`). Raises :class:`NoPicturePairs` (after writing the dead
    letters) if no train post has a usable picture.

    ``vocabulary``: ``"learned"`` (WordPiece of ``vocabulary_size`` learned from the train posts' texts), or a
    token list or ``vocab.txt`` path; not used with a ``text_preset`` in ``model_options`` (the preset's). AdamW
    with warm-up and cosine decay over ``epochs × steps_per_epoch`` (default one pass over the train pairs);
    ``batch_size`` (default the recipe's) is global under ``strategy``.
    ``**model_options`` go to :func:`build_wclip`.
    """
    batch_size = batch_size or recipe.batch_size
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = {"train": list(train_posts), "eval": list(eval_posts)}
    pairs = {split: post_picture_pairs(posts, picture_root) for split, posts in splits.items()}
    with open(out_dir / DEAD_LETTERS_FILE, "w", encoding="utf-8") as file:
        file.writelines(
            json.dumps({"split": split, **letter}, ensure_ascii=False) + "\n"
            for split in splits
            for letter in pairs[split]["set_aside"]
        )
    report = {split: pairs_report(pairs[split], posts) for split, posts in splits.items()}
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=1))
    train = pairs["train"]
    if not len(train["text"]):
        raise NoPicturePairs(
            f"no train post has a usable picture: {report['train']} (see {out_dir / DEAD_LETTERS_FILE})"
        )
    steps_per_epoch = steps_per_epoch or len(train["text"]) // batch_size
    if steps_per_epoch < 1:
        raise NotEnoughData(
            f"{len(train['text'])} (post, picture) train pairs do not fill one batch of {batch_size}: "
            "give more posts with pictures or lower --batch-size"
        )
    if model_options.get("text_preset"):
        vocabulary = None
    elif vocabulary == "learned":
        vocabulary = learn_vocabulary([post_text(post) for post in splits["train"]], vocabulary_size)
    model, history = fit_pairs(
        lambda synchronized_bn: build_wclip(
            recipe, vocabulary, seed=seed, synchronized_bn=synchronized_bn, **model_options
        ),
        lambda model: wclip_batches(train, model, batch_size, shuffle_seed=seed),
        out_dir,
        strategy=strategy,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        learning_rate=learning_rate or recipe.learning_rate,
        weight_decay=weight_decay or recipe.weight_decay,
        verbose=verbose,
    )
    if len(pairs["eval"]["text"]):
        metrics = pair_retrieval_metrics(model.embed_images, model.embed_texts, pairs["eval"])
        chance = chance_metrics(retrieval_entities(pairs["eval"])[2])
        metrics.update({f"chance_{name}": value for name, value in chance.items()})
        (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
    return model, history


def train_on_posts(recipe: Recipe, settings: TrainSettings) -> Trained:
    """A :class:`Recipe` trainer: W-CLIP on the posts ingested under ``settings.weibo`` (``tfcl ingest weibo ...
    --out DIR``) and their pictures (the eval split scored into ``OUT/metrics.json``, set-aside picture references
    in ``OUT/picture_dead_letters.jsonl``), the text tower from ``settings.text_preset`` if given. The
    :class:`Trained` data: the train posts, the export's index."""
    if not settings.weibo:
        raise SystemExit(
            f"tfcl train {recipe.name}: --weibo DIR is required (the output of `tfcl ingest weibo ... --out DIR`)"
        )
    posts = {split: ingested_posts(settings.weibo, split) for split in ("train", "eval")}
    model, history = train_wclip(
        recipe,
        posts["train"],
        posts["eval"],
        settings.out_dir,
        picture_root=settings.picture_root,
        strategy=settings.strategy,
        epochs=recipe.epochs_for(settings),
        batch_size=settings.batch_size,
        steps_per_epoch=settings.steps_per_epoch,
        learning_rate=settings.learning_rate,
        seed=settings.seed,
        verbose=settings.verbose,
        text_preset=settings.text_preset,
    )
    return Trained(model, history, data=posts["train"])


def train_on_pictures(recipe: Recipe, settings: TrainSettings) -> Trained:
    """A :class:`Recipe` trainer: W-CLIP on ingested posts (:func:`train_on_posts`) when ``settings.weibo`` is
    given, otherwise the picture–text pairs (:func:`~tfcl.recipes.image_text.train_on_picture_text_pairs`)."""
    return (train_on_posts if settings.weibo else train_on_picture_text_pairs)(recipe, settings)
