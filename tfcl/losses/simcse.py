"""SimCSE loss (Gao et al. 2021): in-batch InfoNCE from each sentence to its positive, plus optional hard negatives."""

from __future__ import annotations

import tensorflow as tf

from tfcl import distributed
from tfcl.losses.info_nce import info_nce


def simcse_loss(
    anchors: tf.Tensor, positives: tf.Tensor, hard_negatives: tf.Tensor | None = None, temperature: float = 0.05
) -> tf.Tensor:
    """ℓ_i = −log e^{s(h_i,h_i⁺)/τ} / Σ_j (e^{s(h_i,h_j⁺)/τ} [+ e^{s(h_i,h_j⁻)/τ}]) over the global batch.

    Args:
      anchors: [n, d] L2-normalised sentence embeddings of this replica.
      positives: [n, d] L2-normalised; ``positives[i]`` pairs with ``anchors[i]`` (unsupervised: the same
        sentence under another dropout mask; supervised: an entailment).
      hard_negatives: optional [n, d] L2-normalised (supervised: contradictions); every one is a candidate for
        every anchor, next to the positives.
      temperature: τ.

    Candidates are gathered from every replica (with gradient), so each anchor sees the whole global batch.
    """
    candidates = distributed.gather(positives)
    if hard_negatives is not None:
        candidates = tf.concat([candidates, distributed.gather(hard_negatives)], axis=0)
    positive_ids = distributed.global_indices(tf.shape(anchors)[0])
    return info_nce(anchors, candidates, positive_ids, temperature)
