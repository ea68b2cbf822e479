"""WenLan / BriVL's loss: MoCo across modalities, one queue of keys per modality."""

from __future__ import annotations

import tensorflow as tf

from tfcl.losses.moco import moco_info_nce


def wenlan_loss(
    image_queries: tf.Tensor,
    text_queries: tf.Tensor,
    image_keys: tf.Tensor,
    text_keys: tf.Tensor,
    image_queue: tf.Tensor,
    text_queue: tf.Tensor,
    temperature: float = 0.07,
) -> tf.Tensor:
    """CE_i2t + CE_t2i (Huo et al. 2021).

    i2t: each image query picks its own momentum text key among it and ``text_queue``; t2i: each text query picks
    its momentum image key among it and ``image_queue`` (:func:`moco_info_nce` each way).

    Args:
      image_queries, text_queries: [n, d] L2-normalised, from the online towers.
      image_keys, text_keys: [n, d] L2-normalised, from the momentum towers; row ``i`` of each belongs to pair ``i``.
      image_queue, text_queue: [K, d] L2-normalised past keys of each modality, the negatives.
      temperature: τ.
    """
    i2t = moco_info_nce(image_queries, text_keys, text_queue, temperature)
    t2i = moco_info_nce(text_queries, image_keys, image_queue, temperature)
    return i2t + t2i
