"""CD-TOM (Weibo's Contrastive Document–TOpic Model): a post's text and its #话题# hashtag as a positive pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.losses.symmetric_info_nce import symmetric_info_nce
from tfcl.models.base import ContrastiveModel


@keras.saving.register_keras_serializable(package="tfcl")
class CDTOM(ContrastiveModel):
    """A document tower and a topic tower trained with symmetric in-batch InfoNCE (the structure of CLIP's loss).

    A batch holds N (document, topic) pairs: document ``i`` must pick topic ``i`` among the N topics and topic
    ``i`` document ``i`` among the N documents (negatives from every replica). The data set yields
    ``(documents, topics)`` or ``(documents, topics, topic_ids)`` batches. Documents and topics are strings, or
    their tokens (``TextEncoder.tokenize`` mapped in ``tf.data``; needed under ``tf.distribute``).
    ``topic_ids`` is ``[N, k]`` int: column 0 the id of the pair's topic, the other columns the post's other
    topics, ``-1`` padding. With it, false negatives leave the denominators: topic ``j`` is no negative for
    document ``i`` if ``topic_ids[j, 0]`` is among ``topic_ids[i]`` (two posts of one topic in the batch, or one
    post paired with each of its topics), and symmetrically.

    ``call`` returns the document tower's representation; :meth:`embed_documents` and :meth:`embed_topics` give
    the L2-normalised projections in the shared space, which topic prediction and similar-post search use.

    Args:
      encoder: the document tower (e.g. :class:`tfcl.text.TextEncoder`).
      projector: the document projection head.
      topic_encoder: the topic tower; ``None`` shares the document tower (weights and tokenizer).
      topic_projector: the topic projection head; ``None`` shares the document head.
      temperature: τ; logits are cosine / τ.
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        topic_encoder: keras.Model | None = None,
        topic_projector: keras.layers.Layer | None = None,
        temperature: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(encoder, projector, **kwargs)
        self.topic_encoder = topic_encoder
        self.topic_projector = topic_projector
        self.temperature = temperature

    @property
    def topic_tower(self) -> keras.Model:
        return self.encoder if self.topic_encoder is None else self.topic_encoder

    @property
    def topic_head(self) -> keras.layers.Layer:
        return self.projector if self.topic_projector is None else self.topic_projector

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        if not self.topic_tower.built:
            self.topic_tower.build(input_shape)
        if not self.topic_head.built:
            self.topic_head.build(self.topic_tower.compute_output_shape(input_shape))

    def embed_documents(self, documents: tf.Tensor | dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return tf.math.l2_normalize(self.project(documents, training=training), axis=-1)

    def embed_topics(self, topics: tf.Tensor | dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        features = self.topic_tower(topics, training=training)
        return tf.math.l2_normalize(self.topic_head(features, training=training), axis=-1)

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor | dict[str, tf.Tensor]], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        if not isinstance(views, (tuple, list)) or len(views) not in (2, 3):
            raise ValueError("CD-TOM takes (documents, topics) or (documents, topics, topic_ids) batches.")
        z_documents = self.embed_documents(views[0], training=training)
        z_topics = self.embed_topics(views[1], training=training)
        topic_ids = views[2] if len(views) == 3 else None
        pair_topic = None if topic_ids is None else topic_ids[:, :1]
        loss = symmetric_info_nce(z_documents, z_topics, self.temperature, topic_ids, pair_topic)
        return loss, (z_documents, z_topics)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "topic_encoder": _serialize(self.topic_encoder),
            "topic_projector": _serialize(self.topic_projector),
            "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CDTOM:
        config = dict(config)
        for key in ("topic_encoder", "topic_projector"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return super().from_config(config)


def _serialize(layer: keras.layers.Layer | None) -> dict[str, Any] | None:
    return None if layer is None else keras.saving.serialize_keras_object(layer)
