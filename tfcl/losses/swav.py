"""SwAV: equipartitioned cluster codes (Sinkhorn–Knopp) and the swapped-prediction loss."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfcl import distributed


def sinkhorn(scores: tf.Tensor, epsilon: float = 0.05, iterations: int = 3) -> tf.Tensor:
    """Soft codes [n, K] from prototype scores z·C [n, K]; no gradient flows through them.

    Sinkhorn–Knopp on exp(scores / ε) over the global batch: each prototype gets 1/K of the mass, each sample
    1/B, where the per-prototype sums and B are all-reduced across replicas. Returned rows sum to 1.
    Scores are cosines, so exp(scores / ε) ≤ e^(1/ε) (e^20 at ε 0.05) stays well inside float32.
    """
    codes = tf.exp(tf.stop_gradient(tf.cast(scores, tf.float32)) / epsilon)
    num_samples = distributed.all_reduce_sum(tf.cast(tf.shape(codes)[0], tf.float32))
    num_prototypes = tf.cast(tf.shape(codes)[1], tf.float32)
    codes /= distributed.all_reduce_sum(tf.reduce_sum(codes))
    for _ in range(iterations):
        codes /= distributed.all_reduce_sum(tf.reduce_sum(codes, axis=0, keepdims=True)) * num_prototypes
        codes /= tf.reduce_sum(codes, axis=1, keepdims=True) * num_samples
    return codes * num_samples


def swapped_prediction(scores: Sequence[tf.Tensor], codes: Sequence[tf.Tensor], temperature: float = 0.1) -> tf.Tensor:
    """SwAV's loss: the codes of each assignment crop s are predicted from every other crop t.

    Args:
      scores: per crop, prototype scores z_t·C [n, K] (with gradient).
      codes: per assignment crop s (the first ``len(codes)`` crops), its codes q_s [n, K].
      temperature: τ of p_t = softmax(z_t·C / τ).

    Returns −mean_i Σ_k q_s log p_t, averaged over t ≠ s and then over s.
    """
    log_probabilities = [tf.nn.log_softmax(tf.cast(s, tf.float32) / temperature, axis=-1) for s in scores]
    per_assignment = []
    for s, q in enumerate(codes):
        cross_entropies = [
            -tf.reduce_mean(tf.reduce_sum(q * log_p, axis=-1)) for t, log_p in enumerate(log_probabilities) if t != s
        ]
        per_assignment.append(tf.add_n(cross_entropies) / len(cross_entropies))
    return tf.add_n(per_assignment) / len(per_assignment)
