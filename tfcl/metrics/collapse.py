"""Collapse signals of embeddings (Wang & Isola 2020; per-dimension std; effective rank).

All take raw embeddings and L2-normalise them first, so they can be fed projector outputs directly.
"""

from __future__ import annotations

import tensorflow as tf


def _normalise(z: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(tf.cast(z, tf.float32), axis=-1)


def alignment(z1: tf.Tensor, z2: tf.Tensor, alpha: float = 2.0) -> tf.Tensor:
    """E ||f(x) - f(y)||^alpha over positive pairs (lower is better aligned)."""
    return tf.reduce_mean(tf.norm(_normalise(z1) - _normalise(z2), axis=-1) ** alpha)


def uniformity(z: tf.Tensor, t: float = 2.0) -> tf.Tensor:
    """log E exp(-t ||f(x) - f(y)||^2) over distinct pairs (lower is more uniform; -4 is ideal for d large)."""
    z = _normalise(z)
    sq_dists = tf.maximum(2.0 - 2.0 * tf.matmul(z, z, transpose_b=True), 0.0)
    n = tf.shape(z)[0]
    off_diagonal = tf.logical_not(tf.eye(n, dtype=tf.bool))
    pair_terms = tf.boolean_mask(-t * sq_dists, off_diagonal)
    return tf.math.reduce_logsumexp(pair_terms) - tf.math.log(tf.cast(tf.size(pair_terms), tf.float32))


def embedding_std(z: tf.Tensor) -> tf.Tensor:
    """Mean over dimensions of the batch std of normalised embeddings; ~1/sqrt(d) healthy, -> 0 collapsed."""
    return tf.reduce_mean(tf.math.reduce_std(_normalise(z), axis=0))


def effective_rank(z: tf.Tensor) -> tf.Tensor:
    """exp(entropy) of the normalised eigenvalue spectrum of the embedding covariance (1 = fully collapsed)."""
    z = _normalise(z)
    z = z - tf.reduce_mean(z, axis=0, keepdims=True)
    # The covariance Zᵀ Z / n and the Gram matrix Z Zᵀ / n share their non-zero eigenvalues: decompose the smaller
    # (eigvalsh is cubic: a batch of 2,048 wider than that costs 2,048³, not d³).
    rows, columns = tf.shape(z)[0], tf.shape(z)[1]
    gram = tf.cond(rows < columns, lambda: tf.matmul(z, z, transpose_b=True), lambda: tf.matmul(z, z, transpose_a=True))
    eigenvalues = tf.maximum(tf.linalg.eigvalsh(gram / tf.cast(rows, tf.float32)), 0.0)
    p = eigenvalues / (tf.reduce_sum(eigenvalues) + 1e-12)
    entropy = -tf.reduce_sum(tf.where(p > 0, p * tf.math.log(p), 0.0))
    return tf.exp(entropy)


def collapse_metrics(z1: tf.Tensor, z2: tf.Tensor) -> dict[str, tf.Tensor]:
    """The four signals for a pair of views, keyed by the metric names reported during training."""
    both = tf.concat([z1, z2], axis=0)
    return {
        "alignment": alignment(z1, z2),
        "uniformity": uniformity(z1),
        "embedding_std": embedding_std(both),
        "effective_rank": effective_rank(both),
    }
