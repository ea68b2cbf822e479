"""SimSiam: one shared encoder, a predictor and a stop-gradient on the other branch; no negatives, no momentum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.losses import negative_cosine
from tfcl.models.base import ContrastiveModel


@keras.saving.register_keras_serializable(package="tfcl")
class SimSiam(ContrastiveModel):
    """Chen & He 2021. L = −½[cos(p1, sg(z2)) + cos(p2, sg(z1))].

    The projector should end in batch norm and the predictor be a bottleneck (e.g. 2048 → 512 → 2048).
    ``stop_gradient=False`` removes the stop-gradient, which collapses the representation (the paper's ablation).
    """

    config_layers = (*ContrastiveModel.config_layers, "predictor")

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        predictor: keras.layers.Layer,
        stop_gradient: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(encoder, projector, **kwargs)
        self.predictor = predictor
        self.stop_gradient = stop_gradient

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        if not self.predictor.built:
            self.predictor.build(self.projection_shape(input_shape))

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        z = self.project(tf.concat([views[0], views[1]], axis=0), training=training)
        p_1, p_2 = tf.split(self.predictor(z, training=training), 2)
        targets = tf.stop_gradient(z) if self.stop_gradient else z
        target_1, target_2 = tf.split(targets, 2)
        loss = (negative_cosine(p_1, target_2) + negative_cosine(p_2, target_1)) / 2.0
        return loss, tuple(tf.split(z, 2))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "predictor": keras.saving.serialize_keras_object(self.predictor),
            "stop_gradient": self.stop_gradient,
        }
