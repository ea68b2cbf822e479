"""CLIP's loss: symmetric InfoNCE between image and text embeddings with a learnable logit scale."""

from __future__ import annotations

import tensorflow as tf

from tfcl.losses.symmetric_info_nce import symmetric_info_nce


def clip_loss(
    images: tf.Tensor, texts: tf.Tensor, logit_scale: float | tf.Tensor, labels: tf.Tensor | None = None
) -> tf.Tensor:
    """½[CE(logits, arange) + CE(logitsᵀ, arange)], logits = ``logit_scale`` · images · textsᵀ (Radford et al. 2021).

    Args:
      images, texts: [n, d] L2-normalised; row ``i`` of each is a pair. Candidates come from every replica.
      logit_scale: exp(t), the learnable inverse temperature (the caller caps it, CLIP at 100).
      labels: optional [n] or [n, k] int ids (negative: padding); a candidate sharing one with the anchor is a
        false negative and leaves its denominator (e.g. two pictures of one post).
    """
    return symmetric_info_nce(images, texts, 1.0 / tf.cast(logit_scale, tf.float32), labels)
