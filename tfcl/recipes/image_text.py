"""CLIP and WenLan on pictures with Chinese text: the towers, batches and training used by ``tfcl train
clip|wenlan``, W-CLIP (:mod:`tfcl.recipes.wclip`) and ``benchmarks/image_text.py``.

Pairs are those of :func:`tfcl.data.images.picture_text_pairs` (emoji with their label and tags, Tux Paint stamps
with their captions) or any dict with the same ``image`` / ``text`` columns. Pictures are decoded once, before
training (uint8 arrays); an exported model takes the encoded bytes and decodes them the same way. Which method the
towers train with (CLIP's in-batch negatives, WenLan's queues) is the recipe's (:mod:`tfcl.registry`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfcl.data.images import picture_text_pairs
from tfcl.data.text import bert_chinese_vocab_path
from tfcl.encoders import PictureEncoder
from tfcl.eval.image_text import evaluate_image_text
from tfcl.heads import MLPHead
from tfcl.recipes.base import Recipe, Trained, TrainSettings
from tfcl.text import TextEncoder
from tfcl.training import cosine_adamw, fit_and_save

# ``method(towers, temperature=, queue_size=, base_momentum=)``: the method's model on (image tower, image head,
# text tower, text head)
MethodOnTowers = Callable[..., keras.Model]


def build_image_text_model(
    method: MethodOnTowers,
    vocabulary: Sequence[str] | str | None,
    *,
    text_preset: str | None = None,
    image_size: int = 64,
    image_encoder: str = "resnet_cpu",
    text_length: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    hidden_dim: int = 128,
    intermediate_dim: int = 512,
    dropout: float = 0.1,
    projection_dim: int = 128,
    temperature: float = 0.07,
    queue_size: int = 4096,
    base_momentum: float = 0.99,
    synchronized_bn: bool = False,
    seed: int = 0,
) -> keras.Model:
    """A built, uncompiled image–text ``method`` (:class:`~tfcl.models.CLIP`, :class:`~tfcl.models.WenLan`) on a
    :class:`PictureEncoder` (``image_encoder``: a small ResNet preset or a keras-hub preset) and a random-init BERT
    over ``vocabulary`` (token list or ``vocab.txt``) or from the keras-hub preset folder ``text_preset``, each
    with a linear projection to ``projection_dim`` (as CLIP's). ``temperature``: CLIP's initial 1 / logit scale,
    WenLan's fixed τ. ``queue_size``, ``base_momentum``: WenLan's. Build under ``strategy.scope()`` for several
    replicas (with ``synchronized_bn``)."""
    keras.utils.set_random_seed(seed)
    towers = (
        PictureEncoder.from_preset(image_encoder, image_size, synchronized_bn=synchronized_bn),
        MLPHead((), projection_dim, batch_norm=False, name="image_projector"),
        TextEncoder.from_preset_or_vocabulary(
            text_preset,
            vocabulary,
            sequence_length=text_length,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            name="text_encoder",
        ),
        MLPHead((), projection_dim, batch_norm=False, name="text_projector"),
    )
    model = method(towers, temperature=temperature, queue_size=queue_size, base_momentum=base_momentum)
    model.build((None, image_size, image_size, 3))
    return model


def pair_ids_of(texts: Sequence[str] | np.ndarray) -> np.ndarray:
    """int32 ids of the distinct texts: pairs with the same text are no negatives for each other."""
    return np.unique(np.asarray(texts), return_inverse=True)[1].astype(np.int32)


def pair_batches(
    images: np.ndarray,
    texts: Sequence[str] | np.ndarray,
    model: keras.Model,
    batch_size: int,
    pair_ids: np.ndarray | None = None,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of ``(images, text tokens[, pair_ids])`` for ``model`` (texts tokenised in ``tf.data``).

    ``batch_size`` is global under a ``tf.distribute`` strategy; the last partial batch is dropped. With
    ``shuffle_seed``: shuffled anew each epoch, repeated forever.
    """
    columns = (images, np.asarray(texts, dtype=object).astype(str)) + (() if pair_ids is None else (pair_ids,))
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(texts), seed=shuffle_seed, reshuffle_each_iteration=True).repeat()

    def tokenize(images: tf.Tensor, texts: tf.Tensor, *ids: tf.Tensor) -> tuple[Any, ...]:
        return (images, model.text_encoder.tokenize(texts), *ids)

    return (
        dataset.batch(batch_size, drop_remainder=True)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def fit_pairs(
    build: Callable[[bool], keras.Model],
    batches: Callable[[keras.Model], tf.data.Dataset],
    out_dir: str | Path,
    *,
    strategy: tf.distribute.Strategy | None = None,
    epochs: int,
    steps_per_epoch: int,
    learning_rate: float,
    weight_decay: float,
    time_budget: float | None = None,
    budget_clock: str = "wall",
    verbose: int = 1,
) -> tuple[keras.Model, keras.callbacks.History]:
    """Build (``build(synchronized_bn)``, under ``strategy``'s scope), compile and fit an image–text model on
    ``batches(model)``; returns ``(model, history)``. AdamW with warm-up and cosine decay over
    ``epochs × steps_per_epoch``, or, with ``time_budget`` (seconds on ``budget_clock``, see
    :class:`tfcl.callbacks.TimeBudget`), a constant rate, as the number of steps is not known. ``out_dir`` gets what
    :func:`tfcl.training.fit_and_save` writes (resume from ``backup/``, TensorBoard logs, ``model.keras``,
    ``history.json``)."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build(strategy.num_replicas_in_sync > 1)
        optimizer = (
            keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
            if time_budget
            else cosine_adamw(learning_rate, epochs * steps_per_epoch, weight_decay)
        )
        model.compile(optimizer=optimizer)
    history = fit_and_save(
        model,
        batches(model),
        out_dir=out_dir,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        embedding_dim=model.projector.output_dim,
        time_budget=time_budget,
        budget_clock=budget_clock,
        verbose=verbose,
    )
    return model, history


def train_image_text(
    recipe: Recipe,
    pairs: dict[str, np.ndarray],
    vocabulary: Sequence[str] | str,
    out_dir: str | Path,
    *,
    epochs: int = 10,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    learning_rate: float | None = None,
    weight_decay: float | None = None,
    time_budget: float | None = None,
    budget_clock: str = "wall",
    strategy: tf.distribute.Strategy | None = None,
    seed: int = 0,
    verbose: int = 1,
    **model_options: Any,
) -> tuple[keras.Model, keras.callbacks.History]:
    """Train an image–text ``recipe`` (CLIP, WenLan) on the pairs not held out (:func:`fit_pairs`); returns
    ``(model, history)``. ``batch_size``, ``learning_rate``, ``weight_decay``: default the recipe's.

    ``out_dir`` also gets ``metrics.json`` (:func:`tfcl.eval.image_text.evaluate_image_text`). ``**model_options``
    go to the recipe's ``build_model`` (:func:`build_image_text_model`).
    """
    batch_size = batch_size or recipe.batch_size
    train = ~pairs["held_out"]
    texts = pairs["text"][train]
    model, history = fit_pairs(
        lambda synchronized_bn: recipe.build_model(
            vocabulary, seed=seed, synchronized_bn=synchronized_bn, **model_options
        ),
        lambda model: pair_batches(
            pairs["image"][train], texts, model, batch_size, pair_ids_of(texts), shuffle_seed=seed
        ),
        out_dir,
        strategy=strategy,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch or int(train.sum()) // batch_size,
        learning_rate=learning_rate or recipe.learning_rate,
        weight_decay=weight_decay or recipe.weight_decay,
        time_budget=time_budget,
        budget_clock=budget_clock,
        verbose=verbose,
    )
    metrics = evaluate_image_text(model, pairs)
    (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return model, history


def train_on_picture_text_pairs(recipe: Recipe, settings: TrainSettings) -> Trained:
    """A :class:`Recipe` trainer: ``recipe`` on the emoji / Tux Paint picture–text pairs (every tenth picture held
    out, scored into ``OUT/metrics.json``), text tower over the BERT-Chinese vocabulary or from
    ``settings.text_preset``."""
    pairs = picture_text_pairs()
    model, history = train_image_text(
        recipe,
        pairs,
        bert_chinese_vocab_path(),
        settings.out_dir,
        epochs=recipe.epochs_for(settings),
        batch_size=settings.batch_size,
        steps_per_epoch=settings.steps_per_epoch,
        learning_rate=settings.learning_rate,
        strategy=settings.strategy,
        seed=settings.seed,
        verbose=settings.verbose,
        text_preset=settings.text_preset,
    )
    return Trained(model, history, data=pairs)
