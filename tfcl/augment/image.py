"""Image view presets built from keras-cv layers, one preset per method family.

Every keras-cv layer used here draws its random parameters per sample (``RandomApply`` with ``batchwise=False``,
``RandomCropAndResize``), so the views of one batch differ image by image. Inputs are float images in [0, 1],
grey (1 channel) or colour (3 channels); colour-only transforms are left out for grey input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import keras
import keras_cv
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfcl")
class MultiView(keras.layers.Layer):
    """Applies one augmentation pipeline per view and returns the tuple of views."""

    def __init__(self, pipelines: Iterable[keras.layers.Layer], **kwargs) -> None:
        super().__init__(trainable=False, **kwargs)
        self.pipelines = list(pipelines)

    def call(self, images: tf.Tensor) -> tuple[tf.Tensor, ...]:
        images = tf.convert_to_tensor(images)
        return tuple(pipeline(images) for pipeline in self.pipelines)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pipelines": [keras.saving.serialize_keras_object(p) for p in self.pipelines]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MultiView:
        config = dict(config)
        config["pipelines"] = [keras.saving.deserialize_keras_object(p) for p in config["pipelines"]]
        return cls(**config)


def view_pipeline(
    image_size: int,
    channels: int,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    jitter_strength: float = 0.5,
    jitter_probability: float = 0.8,
    grayscale_probability: float = 0.2,
    blur_probability: float = 0.0,
    solarize_probability: float = 0.0,
    seed: int | None = None,
) -> keras.Sequential:
    """One view: random resized crop → flip → colour jitter → grayscale → blur → solarise (SimCLR's order)."""
    s = jitter_strength
    layers = [
        keras_cv.layers.RandomCropAndResize(
            target_size=(image_size, image_size),
            crop_area_factor=crop_scale,
            aspect_ratio_factor=(3 / 4, 4 / 3),
            seed=seed,
        ),
        keras_cv.layers.RandomFlip("horizontal", seed=seed),
    ]
    if jitter_probability > 0 and s > 0:
        colour = channels == 3
        jitter = keras_cv.layers.RandomColorJitter(
            value_range=(0, 1),
            brightness_factor=0.8 * s,
            contrast_factor=0.8 * s,
            saturation_factor=(0.5 - 0.4 * s, 0.5 + 0.4 * s) if colour else (0.5, 0.5),
            hue_factor=0.2 * s if colour else 0.0,
            seed=seed,
        )
        if not colour:  # saturation/hue need RGB; brightness/contrast are what remains for grey images
            jitter = keras.Sequential(
                [
                    keras_cv.layers.RandomBrightness(factor=0.8 * s, value_range=(0, 1), seed=seed),
                    keras_cv.layers.RandomContrast(factor=0.8 * s, value_range=(0, 1), seed=seed),
                ]
            )
        layers.append(keras_cv.layers.RandomApply(jitter, rate=jitter_probability, seed=seed))
    if grayscale_probability > 0 and channels == 3:
        layers.append(
            keras_cv.layers.RandomApply(
                keras_cv.layers.Grayscale(output_channels=3), rate=grayscale_probability, seed=seed
            )
        )
    if blur_probability > 0:
        kernel = max(3, (image_size // 10) | 1)
        layers.append(
            keras_cv.layers.RandomApply(
                keras_cv.layers.RandomGaussianBlur(kernel_size=kernel, factor=(0.1, 2.0), seed=seed),
                rate=blur_probability,
                seed=seed,
            )
        )
    if solarize_probability > 0:
        layers.append(
            keras_cv.layers.RandomApply(
                keras_cv.layers.Solarization(value_range=(0, 1), threshold_factor=(0.5, 0.5), seed=seed),
                rate=solarize_probability,
                seed=seed,
            )
        )
    return keras.Sequential(layers)


BLUR_MIN_SIZE = 64  # blur only images this large: SimCLR skips it on CIFAR, as do solo-learn's small-image recipes


def simclr_augmentation(
    image_size: int,
    channels: int = 3,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    jitter_strength: float = 0.5,
    seed: int | None = None,
) -> MultiView:
    """SimCLR's symmetric recipe; Gaussian blur (p 0.5) only for images of ``BLUR_MIN_SIZE`` px and more."""
    blur = 0.5 if image_size >= BLUR_MIN_SIZE else 0.0
    return MultiView(
        [
            view_pipeline(image_size, channels, crop_scale, jitter_strength, blur_probability=blur, seed=seed)
            for _ in range(2)
        ]
    )


def byol_augmentation(
    image_size: int,
    channels: int = 3,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    jitter_strength: float = 0.5,
    seed: int | None = None,
) -> MultiView:
    """BYOL's asymmetric recipe: view 1 always blurred; view 2 rarely blurred and sometimes (p 0.2) solarised.

    Below ``BLUR_MIN_SIZE`` px neither view is blurred and the solarisation alone keeps the views asymmetric
    (solo-learn's CIFAR recipes for BYOL and Barlow Twins).
    """
    large = image_size >= BLUR_MIN_SIZE
    return MultiView(
        [
            view_pipeline(
                image_size, channels, crop_scale, jitter_strength, blur_probability=1.0 if large else 0.0, seed=seed
            ),
            view_pipeline(
                image_size,
                channels,
                crop_scale,
                jitter_strength,
                blur_probability=0.1 if large else 0.0,
                solarize_probability=0.2,
                seed=seed,
            ),
        ]
    )


def view_dataset(
    images: np.ndarray,
    augmentation: Callable[[tf.Tensor], tuple[tf.Tensor, ...]],
    batch_size: int,
    shuffle: bool = True,
    seed: int | None = None,
    repeat: bool = False,
) -> tf.data.Dataset:
    """A parallel ``tf.data`` pipeline of view tuples from uint8 (or [0, 1] float) images [N, H, W, C]."""
    dataset = tf.data.Dataset.from_tensor_slices(images)
    if shuffle:
        dataset = dataset.shuffle(min(len(images), 60_000), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(
        lambda x: augmentation(tf.image.convert_image_dtype(x, tf.float32)), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
