"""Two towers, image and text, projected into one space: the base of CLIP and WenLan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.models.base import ContrastiveModel


class ImageTextModel(ContrastiveModel):
    """A :class:`ContrastiveModel` whose views are ``(images, texts)`` or ``(images, texts, pair_ids)`` batches.

    ``encoder`` / ``projector`` are the image tower and head (``call`` returns the image representation),
    ``text_encoder`` / ``text_projector`` the text tower and head. Images are what the image tower takes
    (:class:`tfcl.encoders.PictureEncoder`: encoded bytes or decoded uint8 images); texts are strings or their tokens
    (``TextEncoder.tokenize`` in ``tf.data``, needed under ``tf.distribute``). :meth:`embed_images` and
    :meth:`embed_texts` give L2-normalised projections in the shared space, what retrieval uses.
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        text_encoder: keras.Model,
        text_projector: keras.layers.Layer,
        **kwargs,
    ) -> None:
        super().__init__(encoder, projector, **kwargs)
        self.text_encoder = text_encoder
        self.text_projector = text_projector

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """``input_shape``: the image input's (the text tower is built at construction)."""
        super().build(input_shape)
        if not self.text_projector.built:
            self.text_projector.build(self.text_encoder.compute_output_shape((None,)))

    def embed_images(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        return tf.math.l2_normalize(self.project(images, training=training), axis=-1)

    def embed_texts(self, texts: tf.Tensor | dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        features = self.text_encoder(texts, training=training)
        return tf.math.l2_normalize(self.text_projector(features, training=training), axis=-1)

    @staticmethod
    def unpack(
        views: Sequence[tf.Tensor | dict[str, tf.Tensor]],
    ) -> tuple[tf.Tensor, tf.Tensor | dict[str, tf.Tensor], tf.Tensor | None]:
        """``(images, texts, pair_ids or None)`` of a batch."""
        if not isinstance(views, (tuple, list)) or len(views) not in (2, 3):
            raise ValueError("Image-text models take (images, texts) or (images, texts, pair_ids) batches.")
        return views[0], views[1], views[2] if len(views) == 3 else None

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "text_encoder": keras.saving.serialize_keras_object(self.text_encoder),
            "text_projector": keras.saving.serialize_keras_object(self.text_projector),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImageTextModel:
        config = dict(config)
        for key in ("text_encoder", "text_projector"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return super().from_config(config)
