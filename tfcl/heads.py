"""Projection and prediction heads: one MLP layer; methods choose its widths (see each model's defaults)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfcl")
class MLPHead(keras.layers.Layer):
    """Dense → [BN] → ReLU for each hidden width, then a linear output (optionally batch-normalised).

    Args:
      hidden_units: widths of the hidden layers.
      output_dim: width of the output.
      batch_norm: batch-normalise hidden layers.
      output_batch_norm: batch-normalise the output too (SimSiam's projector ends in BN).
      synchronized: synchronise batch statistics across replicas under a ``tf.distribute`` strategy.
    """

    def __init__(
        self,
        hidden_units: Sequence[int] = (512,),
        output_dim: int = 128,
        batch_norm: bool = True,
        output_batch_norm: bool = False,
        synchronized: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_units = tuple(hidden_units)
        self.output_dim = output_dim
        self.batch_norm = batch_norm
        self.output_batch_norm = output_batch_norm
        self.synchronized = synchronized
        self.blocks = []
        for units in self.hidden_units:
            self.blocks.append(keras.layers.Dense(units, use_bias=not batch_norm))
            if batch_norm:
                self.blocks.append(keras.layers.BatchNormalization(synchronized=synchronized))
            self.blocks.append(keras.layers.ReLU())
        self.blocks.append(keras.layers.Dense(output_dim, use_bias=not output_batch_norm))
        if output_batch_norm:
            self.blocks.append(keras.layers.BatchNormalization(synchronized=synchronized))

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        for block in self.blocks:
            block.build(input_shape)
            input_shape = block.compute_output_shape(input_shape)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        x = inputs
        for block in self.blocks:
            x = block(x, training=training)
        return x

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.output_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "output_dim": self.output_dim,
            "batch_norm": self.batch_norm,
            "output_batch_norm": self.output_batch_norm,
            "synchronized": self.synchronized,
        }
