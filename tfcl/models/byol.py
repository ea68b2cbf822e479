"""BYOL: online encoder → projector → predictor regresses the momentum target's projection of the other view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.losses import negative_cosine
from tfcl.models.momentum import MomentumContrastiveModel


@keras.saving.register_keras_serializable(package="tfcl")
class BYOL(MomentumContrastiveModel):
    """Grill et al. 2020. L = 2 − 2cos(p(v1), sg(z_target(v2))), averaged with the swapped term; no negatives.

    Use asymmetric views (``tfcl.augment.byol_augmentation``) and ``total_steps`` for the cosine EMA schedule.
    """

    config_layers = (*MomentumContrastiveModel.config_layers, "predictor")

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        predictor: keras.layers.Layer,
        base_momentum: float = 0.99,
        total_steps: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(encoder, projector, base_momentum=base_momentum, total_steps=total_steps, **kwargs)
        self.predictor = predictor

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        if not self.predictor.built:
            self.predictor.build(self.projection_shape(input_shape))

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        both = tf.concat([views[0], views[1]], axis=0)
        z = self.project(both, training=training)
        p_1, p_2 = tf.split(self.predictor(z, training=training), 2)
        target_1, target_2 = tf.split(self.target_project(both, training=training), 2)
        # the mean of the two 2 − 2cos terms
        loss = 2.0 + negative_cosine(p_1, target_2) + negative_cosine(p_2, target_1)
        return loss, tuple(tf.split(z, 2))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "predictor": keras.saving.serialize_keras_object(self.predictor)}
