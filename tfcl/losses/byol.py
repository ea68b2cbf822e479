"""Negative cosine similarity: the regression loss of BYOL (2 − 2cos) and SimSiam (−cos)."""

from __future__ import annotations

import tensorflow as tf


def negative_cosine(predictions: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """−mean_i cos(p_i, z_i) over rows [n, d].

    BYOL's normalised regression ||p̂ − ẑ||² equals 2 + 2·this; SimSiam's D is this. Targets are used as given:
    callers stop their gradient (SimSiam's collapse test removes exactly that).
    """
    predictions = tf.math.l2_normalize(tf.cast(predictions, tf.float32), axis=-1)
    targets = tf.math.l2_normalize(tf.cast(targets, tf.float32), axis=-1)
    return -tf.reduce_mean(tf.reduce_sum(predictions * targets, axis=-1))
