"""MoCo's InfoNCE: positives from a momentum encoder, negatives from a queue of past keys."""

from __future__ import annotations

import tensorflow as tf

from tfcl.losses.info_nce import info_nce


def moco_info_nce(queries: tf.Tensor, keys: tf.Tensor, queue: tf.Tensor, temperature: float = 0.2) -> tf.Tensor:
    """logits = [q·k⁺, q·queue] / τ, cross-entropy with the positive key (He et al. 2020).

    Args:
      queries: [n, d] L2-normalised, from the online network.
      keys: [n, d] L2-normalised, ``keys[i]`` is the positive of ``queries[i]`` (no gradient needed).
      queue: [K, d] L2-normalised past keys, the negatives.
      temperature: τ.

    The other keys of the batch are not candidates, as in the paper; they join the negatives once enqueued.
    """
    n = tf.shape(queries)[0]
    candidates = tf.concat([tf.cast(keys, queue.dtype), queue], axis=0)
    other_keys = tf.logical_not(tf.eye(n, dtype=tf.bool))
    exclude = tf.concat([other_keys, tf.zeros([n, tf.shape(queue)[0]], tf.bool)], axis=1)
    return info_nce(tf.cast(queries, queue.dtype), candidates, tf.range(n), temperature, exclude=exclude)
