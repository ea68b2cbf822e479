"""Momentum targets: a copy of encoder + projector that follows the online network by EMA (MoCo, BYOL)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.models.base import ContrastiveModel


def target_copy(layer: keras.Layer) -> keras.Layer:
    """A layer named ``target_<name>`` with ``layer``'s configuration and its own, newly created variables."""
    config = keras.saving.serialize_keras_object(layer)
    config["config"]["name"] = f"target_{layer.name}"
    return keras.saving.deserialize_keras_object(config)


class MomentumContrastiveModel(ContrastiveModel):
    """A :class:`ContrastiveModel` with a target encoder + projector updated after every optimizer step by

        θ_target ← τ_k θ_target + (1 − τ_k) θ_online,  τ_k = 1 − (1 − τ_base)(cos(πk/K) + 1)/2,

    k the step (from 0) and K = ``total_steps`` (τ = ``base_momentum`` throughout when ``total_steps`` is None).
    The target becomes an exact copy of the online network at the first training step (``optimizer.iterations``
    0; a resumed run keeps its target), which works however the model was built, eagerly or while ``fit`` traces.
    Its variables are non-trainable (outside the optimizer) yet tracked by the model, so ``.keras`` files and
    weight checkpoints save and restore them. Its batch norm layers run in training mode (batch statistics, own
    moving averages); the EMA covers the online trainable variables.
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        base_momentum: float = 0.99,
        total_steps: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(encoder, projector, **kwargs)
        self.base_momentum = base_momentum
        self.total_steps = total_steps
        self.target_encoder = target_copy(encoder)
        self.target_projector = target_copy(projector)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        if not self.target_encoder.built:
            self.target_encoder.build(input_shape)
        if not self.target_projector.built:
            self.target_projector.build(self.target_encoder.compute_output_shape(input_shape))
        for target in self.target_encoder.weights + self.target_projector.weights:
            target.trainable = False

    def _online_target_pairs(self) -> Iterable[tuple[keras.Variable, keras.Variable]]:
        online = self.encoder.weights + self.projector.weights
        target = self.target_encoder.weights + self.target_projector.weights
        return zip(online, target)

    def train_step(self, data: Sequence[tf.Tensor | dict[str, tf.Tensor]]) -> dict[str, tf.Tensor]:
        tf.cond(self.optimizer.iterations == 0, self._copy_online_to_target, tf.no_op)
        return super().train_step(data)

    def _copy_online_to_target(self) -> tf.Operation:
        for online, target in self._online_target_pairs():
            target.assign(online)
        return tf.no_op()

    def target_project(self, inputs: tf.Tensor | dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """Target projections of ``inputs``, without gradient."""
        features = self.target_encoder(inputs, training=training)
        return tf.stop_gradient(self.target_projector(features, training=training))

    def momentum(self) -> tf.Tensor:
        """τ for the update that follows optimizer step k = ``optimizer.iterations − 1``."""
        if self.total_steps is None:
            return tf.constant(self.base_momentum, tf.float32)
        step = tf.cast(self.optimizer.iterations - 1, tf.float32)
        progress = tf.clip_by_value(step / self.total_steps, 0.0, 1.0)
        return 1.0 - (1.0 - self.base_momentum) * (tf.cos(math.pi * progress) + 1.0) / 2.0

    def after_optimizer_step(self) -> None:
        super().after_optimizer_step()
        tau = self.momentum()
        for online, target in self._online_target_pairs():
            if online.trainable:
                target.assign(tau * target + (1.0 - tau) * online)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "base_momentum": self.base_momentum, "total_steps": self.total_steps}
