"""Optimisers for towers with large embedding tables (the n-gram text tower's hashed buckets).

:class:`LazyAdamW` is Keras' AdamW except where a gradient is sparse (``tf.IndexedSlices``, what an embedding
lookup gives): there it updates only the rows the batch touched — their moments, their decoupled weight decay
and their step — instead of every row of the table, as TF-Addons' ``LazyAdam`` and PyTorch's ``SparseAdam`` do.
A step then costs what the batch touches, not the size of the table; dense gradients get exactly AdamW's update.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfcl")
class LazyAdamW(keras.optimizers.AdamW):
    """AdamW whose sparse updates touch only the rows in the gradient (see the module docstring).

    Same arguments, variables and checkpoints as ``keras.optimizers.AdamW``. Weight decay is applied in each
    variable's own update (``var ← var − lr·wd·var``, then the Adam step, AdamW's order), to the touched rows only
    when the gradient is sparse.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("LazyAdamW has no AMSGrad variant.")

    def _apply_weight_decay(self, variables: Any) -> None:
        """Weight decay is applied in :meth:`update_step`, row by row for sparse gradients."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        decay = self.weight_decay if self.weight_decay and self._use_weight_decay(variable) else 0.0
        if not isinstance(gradient, tf.IndexedSlices):
            if decay:
                self.assign_sub(variable, variable * tf.cast(decay * learning_rate, variable.dtype))
            super().update_step(gradient, variable, learning_rate)
            return
        rows, positions = tf.unique(gradient.indices)
        gradient = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
        gradient = tf.cast(gradient, variable.dtype)
        lr = tf.cast(learning_rate, variable.dtype)
        step = tf.cast(self.iterations + 1, variable.dtype)
        beta_1 = tf.cast(self.beta_1, variable.dtype)
        beta_2 = tf.cast(self.beta_2, variable.dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        m_rows = beta_1 * keras.ops.take(m, rows, axis=0) + (1 - beta_1) * gradient
        v_rows = beta_2 * keras.ops.take(v, rows, axis=0) + (1 - beta_2) * tf.square(gradient)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        change = alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        if decay:
            change += lr * tf.cast(decay, variable.dtype) * keras.ops.take(variable, rows, axis=0)
        self.assign_sub(variable, tf.IndexedSlices(change, rows))
