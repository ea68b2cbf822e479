"""Symmetric InfoNCE (CLIP, CD-TOM): ½[CE(a→b) + CE(b→a)] over paired embeddings of two kinds of input."""

from __future__ import annotations

import tensorflow as tf

from tfcl import distributed
from tfcl.losses.info_nce import info_nce


def symmetric_info_nce(
    a: tf.Tensor,
    b: tf.Tensor,
    temperature: float | tf.Tensor,
    a_labels: tf.Tensor | None = None,
    b_labels: tf.Tensor | None = None,
) -> tf.Tensor:
    """Each ``a[i]`` picks ``b[i]`` among all of ``b`` and each ``b[i]`` picks ``a[i]`` among all of ``a``.

    Candidates are gathered from every replica (with gradient), so anchors see the whole global batch.

    Args:
      a, b: [n, d] L2-normalised; row ``i`` of each is a positive pair (post and its topic, image and its text).
      temperature: τ; logits are cosine / τ.
      a_labels, b_labels: optional int labels of the rows, [n] or [n, k] (a row's label set; negative ids are
        padding). A candidate sharing a label with the anchor is a false negative and is left out of the anchor's
        denominator; the positive never is. ``b_labels`` defaults to ``a_labels``.
    """
    positive_ids = distributed.global_indices(tf.shape(a)[0])
    exclude_from_a = exclude_from_b = None
    if a_labels is not None:
        b_labels = a_labels if b_labels is None else b_labels
        exclude_from_a = false_negatives(a_labels, distributed.gather(b_labels), positive_ids)
        exclude_from_b = false_negatives(b_labels, distributed.gather(a_labels), positive_ids)
    a_to_b = info_nce(a, distributed.gather(b), positive_ids, temperature, exclude_from_a)
    b_to_a = info_nce(b, distributed.gather(a), positive_ids, temperature, exclude_from_b)
    return 0.5 * (a_to_b + b_to_a)


def false_negatives(anchor_labels: tf.Tensor, candidate_labels: tf.Tensor, positive_ids: tf.Tensor) -> tf.Tensor:
    """[n, m] bool: candidate ``j`` shares a (non-negative) label with anchor ``i`` and is not its positive."""
    anchor_labels = _label_sets(anchor_labels)[:, :, None, None]
    candidate_labels = _label_sets(candidate_labels)[None, None, :, :]
    shared = tf.reduce_any(tf.equal(anchor_labels, candidate_labels) & (anchor_labels >= 0), axis=(1, 3))
    is_positive = tf.one_hot(positive_ids, tf.shape(shared)[1], on_value=True, off_value=False)
    return shared & ~is_positive


def _label_sets(labels: tf.Tensor) -> tf.Tensor:
    labels = tf.convert_to_tensor(labels)
    return labels[:, None] if labels.shape.rank == 1 else labels
