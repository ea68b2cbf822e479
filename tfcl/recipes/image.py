"""Image methods: build a method on a fresh encoder, train it on images with its views (``tfcl train simclr`` ...).

The methods themselves (model, views, defaults) are entries of :mod:`tfcl.registry`, made with
:func:`image_recipe`. Measured results of the defaults: ``benchmarks/results/image_ssl.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfcl.augment import view_dataset
from tfcl.callbacks import EncoderEvaluation
from tfcl.data.images import image_splits
from tfcl.encoders import image_encoder
from tfcl.models import MomentumContrastiveModel
from tfcl.recipes.base import Recipe, Trained, TrainSettings
from tfcl.training import cosine_adamw, fit_and_save

# ``method(encoder, synchronized_bn)``: the method's model on an encoder (heads, temperature, queue, ...)
MethodOnEncoder = Callable[[keras.Model, bool], keras.Model]
Arrays = tuple[np.ndarray, np.ndarray]


def build_image_model(
    method: MethodOnEncoder,
    channels: int,
    encoder: str = "resnet_cpu",
    synchronized_bn: bool = False,
    **encoder_overrides: Any,
) -> keras.Model:
    """``method`` on a fresh encoder (see :func:`tfcl.encoders.image_encoder`; ``encoder_overrides`` change its
    widths and depths)."""
    backbone = image_encoder(encoder, channels=channels, synchronized_bn=synchronized_bn, **encoder_overrides)
    return method(backbone, synchronized_bn)


def train_image_method(
    recipe: Recipe,
    train: Arrays,
    *,
    out_dir: str | Path,
    epochs: int,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    encoder: str = "resnet_cpu",
    strategy: tf.distribute.Strategy | None = None,
    eval_data: tuple[Arrays, Arrays] | None = None,
    eval_every: int = 1,
    time_budget: float | None = None,
    budget_clock: str = "wall",
    jit_compile: bool = False,
    learning_rate: float | None = None,
    verbose: int = 1,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    seed: int | None = None,
) -> tuple[keras.Model, keras.callbacks.History]:
    """Train an image ``recipe`` on ``train`` = (images uint8 [N, H, W, C], labels); see
    :func:`tfcl.training.fit_and_save`.

    ``batch_size`` is global (default: the recipe's); ``eval_data`` = (train, test) arrays for the per-epoch kNN
    monitor; ``seed`` seeds the shuffling of the images.
    """
    images = train[0]
    image_size, channels = images.shape[1], images.shape[3]
    batch_size = batch_size or recipe.batch_size
    strategy = strategy or tf.distribute.get_strategy()
    steps_per_epoch = steps_per_epoch or len(images) // batch_size
    with strategy.scope():
        model = recipe.build_model(channels, encoder, synchronized_bn=strategy.num_replicas_in_sync > 1)
        model.build((None, image_size, image_size, channels))
        if isinstance(model, MomentumContrastiveModel):
            model.total_steps = epochs * steps_per_epoch  # the cosine EMA schedule runs over the whole training
        model.compile(
            optimizer=cosine_adamw(
                learning_rate or recipe.learning_rate, epochs * steps_per_epoch, recipe.weight_decay
            ),
            jit_compile=jit_compile,
        )
    dataset = view_dataset(images, recipe.views(image_size, channels), batch_size, seed=seed, repeat=True)
    evaluation = [EncoderEvaluation(*eval_data, protocol="knn", every=eval_every)] if eval_data is not None else []
    history = fit_and_save(
        model,
        dataset,
        out_dir=out_dir,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        embedding_dim=model.projector.output_dim,
        evaluation=evaluation,
        time_budget=time_budget,
        budget_clock=budget_clock,
        extra_callbacks=extra_callbacks,
        verbose=verbose,
    )
    return model, history


def train_on_image_set(recipe: Recipe, settings: TrainSettings) -> Trained:
    """A :class:`Recipe` trainer: ``recipe`` on the train split of ``settings.data``, with the kNN monitor on the
    first 10,000 training images and the test split every ``settings.eval_every`` epochs (0: off)."""
    train, test = image_splits(settings.data)
    eval_data = ((train[0][:10_000], train[1][:10_000]), test) if settings.eval_every else None
    model, history = train_image_method(
        recipe,
        train,
        out_dir=settings.out_dir,
        epochs=recipe.epochs_for(settings),
        batch_size=settings.batch_size,
        steps_per_epoch=settings.steps_per_epoch,
        encoder=settings.encoder,
        learning_rate=settings.learning_rate,
        strategy=settings.strategy,
        eval_data=eval_data,
        eval_every=settings.eval_every or 1,
        jit_compile=settings.jit_compile,
        verbose=settings.verbose,
        seed=settings.seed,
    )
    return Trained(model, history, data=train[0].shape[-1])  # the export's image channels


def image_recipe(
    name: str,
    method: MethodOnEncoder,
    views: Callable[[int, int], Callable[..., Any]],
    *,
    summary: str,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    export: Callable[[Trained, TrainSettings], str] | None = None,
) -> Recipe:
    """The :class:`Recipe` of an image method: ``method(encoder, synchronized_bn)`` builds it on an encoder,
    ``views(image_size, channels)`` makes its views; trained by :func:`train_on_image_set`, scored by kNN."""
    return Recipe(
        name=name,
        summary=summary,
        inputs="images",
        build_model=functools.partial(build_image_model, method),
        trainer=train_on_image_set,
        views=views,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        evaluation="kNN top-1 of the frozen encoder on the test split, every --eval-every epochs",
        export=export,
    )
