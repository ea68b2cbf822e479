"""MoCo v2: queries from the online network, keys from the momentum target, negatives from a queue of keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl import distributed
from tfcl.losses import moco_info_nce
from tfcl.models.momentum import MomentumContrastiveModel


def unit_rows(shape: Sequence[int], dtype: str | None = None) -> tf.Tensor:
    """Initializer of a queue: random unit vectors, negatives that carry no information."""
    return tf.math.l2_normalize(keras.random.normal(shape, dtype=dtype), axis=-1)


def add_queue(model: keras.Model, size: int, dim: int, name: str = "queue") -> keras.Variable:
    """A FIFO queue of ``size`` keys of width ``dim``: a non-trainable float32 variable of ``model``."""
    return model.add_weight(
        shape=(size, dim), initializer=unit_rows, trainable=False, dtype="float32", autocast=False, name=name
    )


def enqueue(queue: keras.Variable, keys: tf.Tensor) -> None:
    """Put the keys of the global batch (gathered across replicas) at the front of ``queue``; the oldest drop out."""
    newest_first = tf.concat([distributed.gather(keys), queue], axis=0)
    queue.assign(newest_first[: queue.shape[0]])


@keras.saving.register_keras_serializable(package="tfcl")
class MoCo(MomentumContrastiveModel):
    """He et al. 2020, Chen et al. 2020 (v2: MLP head, τ 0.2, blur augmentation).

    q = online(view 1), k = target(view 2); the keys of the whole global batch (gathered across replicas) are
    enqueued after the loss, oldest keys dropping out (FIFO). The queue is a non-trainable variable of the
    model, saved and restored with it. Batch-norm leakage in the key encoder is handled by synchronised batch
    norm, not shuffle-BN: build the encoder and projector with ``synchronized`` batch norm under a strategy;
    the target copies that configuration.
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        temperature: float = 0.2,
        queue_size: int = 65536,
        base_momentum: float = 0.99,
        total_steps: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(encoder, projector, base_momentum=base_momentum, total_steps=total_steps, **kwargs)
        self.temperature = temperature
        self.queue_size = queue_size

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        dim = self.projection_shape(input_shape)[-1]
        self.queue = add_queue(self, self.queue_size, dim)

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        queries = tf.math.l2_normalize(tf.cast(self.project(views[0], training=training), tf.float32), axis=-1)
        keys = tf.math.l2_normalize(tf.cast(self.target_project(views[1], training=training), tf.float32), axis=-1)
        loss = moco_info_nce(queries, keys, self.queue, self.temperature)
        if training:
            enqueue(self.queue, keys)
        return loss, (queries, keys)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature, "queue_size": self.queue_size}
