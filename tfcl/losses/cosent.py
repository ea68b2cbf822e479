"""CoSENT loss (Su 2022): rank the cosines of scored sentence pairs in the order of their scores."""

from __future__ import annotations

import tensorflow as tf

from tfcl import distributed


def cosent_loss(first: tf.Tensor, second: tf.Tensor, scores: tf.Tensor, scale: float = 20.0) -> tf.Tensor:
    """log(1 + Σ_{s_i > s_j} e^{λ(cos_j − cos_i)}) over every ordered pair of pairs of the global batch.

    Args:
      first, second: [n, d] L2-normalised embeddings of this replica; row ``i`` of each is pair ``i``.
      scores: [n] the pairs' similarity labels (any scale: only their order counts).
      scale: λ.

    Cosines and scores are gathered from every replica (with gradient), so pairs on different replicas are
    ranked against each other and every replica computes the same global-batch loss.
    """
    first, second = tf.cast(first, tf.float32), tf.cast(second, tf.float32)  # mixed precision
    cosines = distributed.gather(tf.reduce_sum(first * second, axis=-1))
    scores = distributed.gather(tf.cast(scores, tf.float32))
    differences = scale * (cosines[None, :] - cosines[:, None])  # [i, j]: λ(cos_j − cos_i)
    ranked = scores[:, None] > scores[None, :]  # pair i should have the higher cosine
    terms = tf.boolean_mask(differences, ranked)
    return tf.reduce_logsumexp(tf.concat([tf.zeros([1]), terms], axis=0))
