"""InfoNCE: one anchor, one positive among candidates; the mechanism behind every negative-based method."""

from __future__ import annotations

import tensorflow as tf

_MASKED = -1e9


def info_nce(
    anchors: tf.Tensor,
    candidates: tf.Tensor,
    positive_ids: tf.Tensor,
    temperature: float | tf.Tensor,
    exclude: tf.Tensor | None = None,
) -> tf.Tensor:
    """Mean cross-entropy of picking ``candidates[positive_ids[i]]`` for ``anchors[i]``.

    Args:
      anchors: [n, d] L2-normalised.
      candidates: [m, d] L2-normalised.
      positive_ids: [n] int, index of each anchor's positive in ``candidates``.
      temperature: scalar τ; logits are cosine / τ.
      exclude: optional [n, m] bool, candidates removed from an anchor's denominator (itself, false negatives).
    """
    anchors, candidates = tf.cast(anchors, tf.float32), tf.cast(candidates, tf.float32)  # mixed precision
    logits = tf.matmul(anchors, candidates, transpose_b=True) / temperature
    if exclude is not None:
        logits = tf.where(exclude, tf.constant(_MASKED, logits.dtype), logits)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positive_ids, logits=logits)
    return tf.reduce_mean(losses)
