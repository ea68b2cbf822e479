"""SwAV: predict the cluster codes of one crop from the other crops, codes equipartitioned by Sinkhorn–Knopp."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl import distributed
from tfcl.losses import sinkhorn, swapped_prediction
from tfcl.models.base import ContrastiveModel

ASSIGNMENT_CROPS = 2


def _unit_columns(shape: Sequence[int], dtype: str | None = None) -> tf.Tensor:
    return tf.math.l2_normalize(keras.random.normal(shape, dtype=dtype), axis=0)


@keras.saving.register_keras_serializable(package="tfcl")
class SwAV(ContrastiveModel):
    """Caron et al. 2020, with multi-crop.

    Views: the 2 large crops first, then any number of smaller crops (``tfcl.augment.multicrop_augmentation``);
    other batch elements (labels) are ignored. The encoder runs once per resolution (same-size crops
    concatenated), the projector once on all crops. Codes come from the 2 large crops only.

    Args:
      num_prototypes: K, the columns of the prototype matrix C [d, K], re-normalised after every step. Keep K
        above the projection width d: in short runs on digits the loss settled at ln K (the collapse signal) with
        K = 100 < d = 128, and went below ln K with K = 512 and 3000.
      temperature: τ of the predicted assignments softmax(z·C / τ).
      epsilon, sinkhorn_iterations: Sinkhorn–Knopp settings.
      freeze_prototypes_steps: the prototypes' gradient is zero for this many first optimizer steps.
      queue_size: 0, or the number of past large-crop embeddings (of the global batch, per large crop) that join
        the batch in Sinkhorn–Knopp once the queue is full (for small batches); divisible by the replica count.
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        num_prototypes: int = 3000,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        freeze_prototypes_steps: int = 0,
        queue_size: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(encoder, projector, **kwargs)
        self.num_prototypes = num_prototypes
        self.temperature = temperature
        self.epsilon = epsilon
        self.sinkhorn_iterations = sinkhorn_iterations
        self.freeze_prototypes_steps = freeze_prototypes_steps
        self.queue_size = queue_size

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        dim = self.projection_shape(input_shape)[-1]
        self.prototypes = self.add_weight(
            shape=(dim, self.num_prototypes),
            initializer=_unit_columns,
            dtype="float32",
            autocast=False,
            name="prototypes",
        )
        if self.queue_size:
            self.queue = self.add_weight(
                shape=(ASSIGNMENT_CROPS, self.queue_size, dim),
                initializer="zeros",
                trainable=False,
                dtype="float32",
                autocast=False,
                name="queue",
            )

    def embed_crops(self, crops: Sequence[tf.Tensor], training: bool = False) -> list[tf.Tensor]:
        """L2-normalised projections of each crop, the encoder applied per group of same-size crops."""
        groups = [list(group) for _, group in itertools.groupby(crops, key=lambda crop: tuple(crop.shape[1:]))]
        features = tf.concat([self(tf.concat(group, axis=0), training=training) for group in groups], axis=0)
        z = tf.cast(self.projector(features, training=training), tf.float32)
        return tf.split(tf.math.l2_normalize(z, axis=-1), len(crops))

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        crops = [view for view in views if len(view.shape) == 4]
        z = self.embed_crops(crops, training=training)
        prototypes = tf.convert_to_tensor(self.prototypes)
        if training and self.freeze_prototypes_steps:
            frozen = self.optimizer.iterations < self.freeze_prototypes_steps
            prototypes = tf.where(frozen, tf.stop_gradient(prototypes), prototypes)
        scores = [tf.matmul(z_crop, prototypes) for z_crop in z]
        codes = [self._codes(scores[crop], crop, prototypes) for crop in range(ASSIGNMENT_CROPS)]
        if training and self.queue_size:
            newest = tf.stop_gradient(tf.stack([distributed.gather(z[crop]) for crop in range(ASSIGNMENT_CROPS)]))
            self.queue.assign(tf.concat([newest, self.queue], axis=1)[:, : self.queue_size])
        return swapped_prediction(scores, codes, self.temperature), (z[0], z[1])

    def _codes(self, scores: tf.Tensor, crop: int, prototypes: tf.Tensor) -> tf.Tensor:
        """Sinkhorn codes of one large crop's batch, joined by this replica's share of the queue once it is full."""
        if not self.queue_size:
            return sinkhorn(scores, self.epsilon, self.sinkhorn_iterations)
        replicas = distributed.num_replicas()
        if self.queue_size % replicas:
            raise ValueError(f"queue_size {self.queue_size} is not divisible by {replicas} replicas.")
        queue = self.queue[crop]
        share = tf.reshape(queue, (replicas, self.queue_size // replicas, -1))[distributed.replica_id()]
        queued_scores = tf.matmul(share, tf.stop_gradient(prototypes))
        with_queue = sinkhorn(tf.concat([queued_scores, scores], axis=0), self.epsilon, self.sinkhorn_iterations)
        alone = sinkhorn(scores, self.epsilon, self.sinkhorn_iterations)
        # both are computed (cheap next to the encoder): static shapes, and no all-reduce inside control flow
        full = tf.reduce_any(queue[-1] != 0)  # the oldest slot is filled
        return tf.where(full, with_queue[-tf.shape(scores)[0] :], alone)

    def after_optimizer_step(self) -> None:
        super().after_optimizer_step()
        self.prototypes.assign(tf.math.l2_normalize(self.prototypes, axis=0))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_prototypes": self.num_prototypes,
            "temperature": self.temperature,
            "epsilon": self.epsilon,
            "sinkhorn_iterations": self.sinkhorn_iterations,
            "freeze_prototypes_steps": self.freeze_prototypes_steps,
            "queue_size": self.queue_size,
        }
