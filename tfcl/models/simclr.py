"""SimCLR: two augmented views per image, in-batch (global) negatives, NT-Xent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.losses import nt_xent
from tfcl.models.base import ContrastiveModel


@keras.saving.register_keras_serializable(package="tfcl")
class SimCLR(ContrastiveModel):
    """Chen et al. 2020. Both views go through the encoder in one batch, so batch norm sees 2N samples."""

    def __init__(self, encoder: keras.Model, projector: keras.layers.Layer, temperature: float = 0.5, **kwargs) -> None:
        super().__init__(encoder, projector, **kwargs)
        self.temperature = temperature

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        view_1, view_2 = views[0], views[1]
        z = tf.math.l2_normalize(self.project(tf.concat([view_1, view_2], axis=0), training=training), axis=-1)
        z_1, z_2 = tf.split(z, 2, axis=0)
        return nt_xent(z_1, z_2, self.temperature), (z_1, z_2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}
