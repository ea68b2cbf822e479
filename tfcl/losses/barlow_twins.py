"""Barlow Twins: redundancy reduction on the cross-correlation of standardised embeddings."""

from __future__ import annotations

import tensorflow as tf

from tfcl import distributed


def _global_standardise(z: tf.Tensor, batch_size: tf.Tensor, epsilon: float) -> tf.Tensor:
    """Per-dimension (z − mean) / std over the global batch (biased variance, as batch norm without affine)."""
    mean = distributed.all_reduce_sum(tf.reduce_sum(z, axis=0)) / batch_size
    centred = z - mean
    variance = distributed.all_reduce_sum(tf.reduce_sum(tf.square(centred), axis=0)) / batch_size
    return centred * tf.math.rsqrt(variance + epsilon)


def barlow_twins(
    z1: tf.Tensor, z2: tf.Tensor, redundancy_weight: float | None = None, epsilon: float = 1e-5
) -> tf.Tensor:
    """L = Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij², c = BN(z1)ᵀ BN(z2) / B over the global batch (Zbontar et al. 2021).

    Args:
      z1, z2: this replica's projections of the two views [n, d] (not normalised).
      redundancy_weight: λ; ``None`` means 1/d.
      epsilon: added to the variance, as in batch norm.

    Means, variances and the correlation sums are all-reduced, so every replica computes the global loss.
    """
    z1, z2 = tf.cast(z1, tf.float32), tf.cast(z2, tf.float32)
    batch_size = distributed.all_reduce_sum(tf.cast(tf.shape(z1)[0], tf.float32))
    dim = z1.shape[-1]
    weight = 1.0 / dim if redundancy_weight is None else redundancy_weight
    a = _global_standardise(z1, batch_size, epsilon)
    b = _global_standardise(z2, batch_size, epsilon)
    correlation = distributed.all_reduce_sum(tf.matmul(a, b, transpose_a=True)) / batch_size
    diagonal = tf.linalg.diag_part(correlation)
    invariance = tf.reduce_sum(tf.square(1.0 - diagonal))
    redundancy = tf.reduce_sum(tf.square(correlation)) - tf.reduce_sum(tf.square(diagonal))
    return invariance + weight * redundancy
