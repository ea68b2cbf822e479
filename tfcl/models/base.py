"""Base classes: every method is views → encoder → projector (→ predictor) → loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl import distributed
from tfcl.metrics.collapse import collapse_metrics

COLLAPSE_METRICS = ("alignment", "uniformity", "embedding_std", "effective_rank")


class ContrastiveModel(keras.Model):
    """A Keras model whose ``train_step`` optimises a self-supervised loss over views of the same input.

    Subclasses implement :meth:`compute_contrastive_loss`, returning the loss and a pair of embeddings of
    positive views (used for the collapse metrics). ``call`` returns the encoder representation, which is what
    downstream evaluation and export use. The data set yields a tuple of views (extra elements, e.g. labels,
    are ignored by methods that do not need them).

    Gradients are computed on ``loss / num_replicas`` so that the optimizer's cross-replica sum equals the
    gradient of the global-batch loss; losses gather negatives across replicas themselves.

    ``config_layers`` names the constructor arguments that are layers (serialised in :meth:`get_config`); a
    subclass with more of them extends it.
    """

    config_layers = ("encoder", "projector")

    def __init__(self, encoder: keras.Model, projector: keras.layers.Layer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.projector = projector
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.collapse_trackers = [keras.metrics.Mean(name=name) for name in COLLAPSE_METRICS]

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if not self.encoder.built:
            self.encoder.build(input_shape)
        if not self.projector.built:
            self.projector.build(self.encoder.compute_output_shape(input_shape))

    def projection_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """Shape of the projector output for inputs of ``input_shape``."""
        return self.projector.compute_output_shape(self.encoder.compute_output_shape(input_shape))

    def call(self, inputs: tf.Tensor | dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return self.encoder(inputs, training=training)

    def project(self, inputs: tf.Tensor | dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return self.projector(self(inputs, training=training), training=training)

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor | dict[str, tf.Tensor]], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        """Return ``(loss, (z_a, z_b))`` for a tuple of views; ``z_a``/``z_b`` are paired embeddings."""
        raise NotImplementedError

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, *self.collapse_trackers]

    def train_step(self, data: Sequence[tf.Tensor | dict[str, tf.Tensor]]) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss, (z_a, z_b) = self.compute_contrastive_loss(data, training=True)
            total = loss + tf.add_n(self.losses) if self.losses else loss
            scaled = self.optimizer.scale_loss(total / distributed.num_replicas())
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.after_optimizer_step()
        return self._update_metrics(loss, z_a, z_b)

    def test_step(self, data: Sequence[tf.Tensor | dict[str, tf.Tensor]]) -> dict[str, tf.Tensor]:
        loss, (z_a, z_b) = self.compute_contrastive_loss(data, training=False)
        return self._update_metrics(loss, z_a, z_b)

    def after_optimizer_step(self) -> None:
        """Hook run after each weight update (momentum targets, queues, prototype normalisation)."""

    def _update_metrics(self, loss: tf.Tensor, z_a: tf.Tensor, z_b: tf.Tensor) -> dict[str, tf.Tensor]:
        self.loss_tracker.update_state(loss)
        values = collapse_metrics(z_a, z_b)
        for tracker in self.collapse_trackers:
            tracker.update_state(values[tracker.name])
        return {m.name: m.result() for m in self.metrics}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "projector": keras.saving.serialize_keras_object(self.projector),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ContrastiveModel:
        config = dict(config)
        for key in cls.config_layers:
            if key in config:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
