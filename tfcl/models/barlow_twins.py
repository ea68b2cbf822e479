"""Barlow Twins: make the cross-correlation of the two views' embeddings the identity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.losses import barlow_twins
from tfcl.models.base import ContrastiveModel


@keras.saving.register_keras_serializable(package="tfcl")
class BarlowTwins(ContrastiveModel):
    """Zbontar et al. 2021; the correlation is taken over the global batch (see ``tfcl.losses.barlow_twins``).

    ``redundancy_weight`` is λ on the off-diagonal terms; ``None`` means 1/d.
    """

    def __init__(
        self, encoder: keras.Model, projector: keras.layers.Layer, redundancy_weight: float | None = None, **kwargs
    ) -> None:
        super().__init__(encoder, projector, **kwargs)
        self.redundancy_weight = redundancy_weight

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        z_1, z_2 = tf.split(self.project(tf.concat([views[0], views[1]], axis=0), training=training), 2)
        return barlow_twins(z_1, z_2, self.redundancy_weight), (z_1, z_2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "redundancy_weight": self.redundancy_weight}
