"""CLIP: image and text towers, symmetric in-batch InfoNCE across modalities, a learnable logit scale."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.losses.clip import clip_loss
from tfcl.models.image_text import ImageTextModel


@keras.saving.register_keras_serializable(package="tfcl")
class CLIP(ImageTextModel):
    """Radford et al. 2021: image ``i`` picks text ``i`` among every text of the global batch and text ``i`` image
    ``i`` (candidates gathered across replicas); logits = exp(t) · cosine.

    t is a trainable scalar initialised to log(``logit_scale``); the scale is capped at ``max_logit_scale`` in the
    loss and t is clipped to log(``max_logit_scale``) after every optimizer step (as CLIP clamps it).
    ``pair_ids`` in a batch mark pairs that share a post (or a class): they are no negatives for each other.
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        text_encoder: keras.Model,
        text_projector: keras.layers.Layer,
        logit_scale: float = 1 / 0.07,
        max_logit_scale: float = 100.0,
        **kwargs,
    ) -> None:
        super().__init__(encoder, projector, text_encoder, text_projector, **kwargs)
        self.logit_scale = logit_scale
        self.max_logit_scale = max_logit_scale
        self.log_logit_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(logit_scale)),
            dtype="float32",
            autocast=False,
            name="log_logit_scale",
        )

    def current_logit_scale(self) -> tf.Tensor:
        return tf.exp(tf.minimum(self.log_logit_scale, math.log(self.max_logit_scale)))

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor | dict[str, tf.Tensor]], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        images, texts, pair_ids = self.unpack(views)
        z_images = tf.cast(self.embed_images(images, training=training), tf.float32)
        z_texts = tf.cast(self.embed_texts(texts, training=training), tf.float32)
        return clip_loss(z_images, z_texts, self.current_logit_scale(), pair_ids), (z_images, z_texts)

    def after_optimizer_step(self) -> None:
        super().after_optimizer_step()
        self.log_logit_scale.assign(tf.minimum(self.log_logit_scale, math.log(self.max_logit_scale)))

    def _update_metrics(self, loss: tf.Tensor, z_a: tf.Tensor, z_b: tf.Tensor) -> dict[str, tf.Tensor]:
        return {**super()._update_metrics(loss, z_a, z_b), "logit_scale": self.current_logit_scale()}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "logit_scale": self.logit_scale, "max_logit_scale": self.max_logit_scale}
