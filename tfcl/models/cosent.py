"""CoSENT: sentence embeddings whose cosines are ranked like the human scores of sentence pairs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.losses.cosent import cosent_loss
from tfcl.models.base import ContrastiveModel


@keras.saving.register_keras_serializable(package="tfcl")
class CoSENT(ContrastiveModel):
    """Su 2022 over a text encoder (e.g. :class:`tfcl.text.TextEncoder`), trained on scored pairs (STS-B).

    The data set yields ``(first, second, score)`` batches: two batches of sentences (strings, or their tokens
    from ``TextEncoder.tokenize``, which ``tf.distribute`` needs) and a float score per pair. Both sentences go
    through the encoder in one pass. The loss ranks the pairs' cosines in the order of their scores
    (:func:`tfcl.losses.cosent_loss`), so the cosine that is trained is the one served when the projector is
    ``keras.layers.Identity()``.
    """

    def __init__(self, encoder: keras.Model, projector: keras.layers.Layer, scale: float = 20.0, **kwargs: Any) -> None:
        super().__init__(encoder, projector, **kwargs)
        self.scale = scale

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor | dict[str, tf.Tensor]], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        if not isinstance(views, (tuple, list)) or len(views) != 3:
            raise ValueError("CoSENT takes (first, second, score) batches: two batches of sentences and their scores.")
        first, second, scores = views
        batch = tf.nest.map_structure(lambda *parts: tf.concat(parts, axis=0), first, second)
        z_first, z_second = tf.split(tf.math.l2_normalize(self.project(batch, training=training), axis=-1), 2)
        return cosent_loss(z_first, z_second, scores, self.scale), (z_first, z_second)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}
