"""The one shape of a method's recipe: what :mod:`tfcl.registry` holds for every method, by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

# What a batch of each kind of method holds; the method contract test has one small batch of each.
INPUTS = ("images", "texts", "text_triplets", "scored_text_pairs", "picture_texts", "document_topics")
# The kinds of the sentence-encoder methods (one text tower): sentences, (anchor, positive, hard negative)
# triplets, and (first, second, score) pairs.
SENTENCE_INPUTS = ("texts", "text_triplets", "scored_text_pairs")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """One training run as the CLI (``tfcl train``) or a TFX Trainer asks for it. ``None``: the recipe's default.

    ``data`` (an image data set of :func:`tfcl.data.images.image_splits`), ``encoder``, ``eval_every`` and
    ``jit_compile`` are the image methods'; ``weibo`` (ingested posts), ``picture_root`` and ``topic_index`` the
    Weibo ones'; ``text_tower`` (``"bert"`` or ``"ngram"``) and ``text_preset`` (a keras-hub preset folder to start
    the BERT tower from) the text ones'; ``seed`` seeds the weights, views and shuffling. A recipe ignores the
    settings it has no use for.
    """

    out_dir: str | Path
    epochs: int | None = None
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    strategy: tf.distribute.Strategy | None = None
    verbose: int = 1
    data: str = "fashion_mnist"
    encoder: str = "resnet_cpu"
    eval_every: int = 1
    jit_compile: bool = False
    weibo: str | None = None
    picture_root: str | None = None
    topic_index: str | None = None
    text_tower: str | None = None
    text_preset: str | None = None
    seed: int = 0


class NotEnoughData(ValueError):
    """The training data does not fill one batch; the message says how much there is."""


@dataclasses.dataclass(frozen=True)
class Trained:
    """What a recipe's training returns: the model, its ``fit`` history and the data its export indexes."""

    model: keras.Model
    history: keras.callbacks.History
    data: Any = None


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A method by name: how to build it, feed it, train it, what it reports and how it is served.

    Attributes:
      name: what ``tfcl train NAME`` takes.
      summary: one line for ``tfcl train --help``.
      inputs: what a batch holds, one of :data:`INPUTS`.
      build_model: a built, uncompiled model (``build_model(channels, **options)`` for images,
        ``build_model(vocabulary, **options)`` for the others; options are the builder's keywords, e.g. smaller
        towers, ``synchronized_bn``).
      trainer: ``trainer(recipe, settings)`` → :class:`Trained`: reads the data, builds the views or batches,
        compiles and fits (:func:`tfcl.training.fit_and_save`).
      batch_size, learning_rate, weight_decay, epochs: the defaults a run uses unless it is given others.
      optimizer: the optimiser and its schedule, in words.
      evaluation: what a trained model is scored on, in words.
      views: images only: ``views(image_size, channels)`` maps a batch of images to the method's views.
      export: ``export(trained, settings)`` writes the served SavedModel and returns its path; None: no export.
      options: method data the trainer reads (e.g. W-CLIP's negatives).
      reads_ingested_posts: it trains on the posts of ``tfcl ingest weibo`` (``TrainSettings.weibo``).
    """

    name: str
    summary: str
    inputs: str
    build_model: Callable[..., keras.Model]
    trainer: Callable[[Recipe, TrainSettings], Trained]
    batch_size: int
    learning_rate: float
    weight_decay: float
    evaluation: str
    epochs: int = 20
    optimizer: str = "AdamW, linear warm-up then cosine decay"
    views: Callable[[int, int], Callable[..., Any]] | None = None
    export: Callable[[Trained, TrainSettings], str] | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    reads_ingested_posts: bool = False

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"{self.name}: inputs must be one of {INPUTS}, got {self.inputs!r}")

    def train(self, settings: TrainSettings) -> Trained:
        """Train this method as ``settings`` ask (see :attr:`trainer`)."""
        return self.trainer(self, settings)

    def batch_size_for(self, settings: TrainSettings) -> int:
        """The global batch size of a run: the one asked for, or the recipe's."""
        return settings.batch_size or self.batch_size

    def learning_rate_for(self, settings: TrainSettings) -> float:
        """The peak learning rate of a run: the one asked for, or the recipe's."""
        return settings.learning_rate or self.learning_rate

    def epochs_for(self, settings: TrainSettings) -> int:
        """The epochs of a run: the ones asked for, or the recipe's."""
        return settings.epochs or self.epochs
