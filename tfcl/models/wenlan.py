"""WenLan / BriVL: CLIP's two towers with MoCo's momentum targets and queues, one queue per modality."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.losses.wenlan import wenlan_loss
from tfcl.models.image_text import ImageTextModel
from tfcl.models.moco import add_queue, enqueue
from tfcl.models.momentum import MomentumContrastiveModel, target_copy
from tfcl.text import TextEncoder


@keras.saving.register_keras_serializable(package="tfcl")
class WenLan(ImageTextModel, MomentumContrastiveModel):
    """Huo et al. 2021 (BriVL): image queries against the momentum text keys of the batch and a queue of past text
    keys, text queries symmetrically against image keys; L = CE_i2t + CE_t2i (:func:`wenlan_loss`).

    Both towers have momentum copies (EMA after every optimizer step, see :class:`MomentumContrastiveModel`) and
    both queues are non-trainable variables of the model: ``.keras`` files and weight checkpoints keep them. The
    keys of the global batch (gathered across replicas) are enqueued after the loss, newest first. ``pair_ids``
    in a batch are accepted and not used: the other keys of the batch are no candidates here (as in MoCo).
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        text_encoder: TextEncoder,
        text_projector: keras.layers.Layer,
        temperature: float = 0.07,
        queue_size: int = 9600,
        base_momentum: float = 0.99,
        total_steps: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(
            encoder,
            projector,
            text_encoder,
            text_projector,
            base_momentum=base_momentum,
            total_steps=total_steps,
            **kwargs,
        )
        self.temperature = temperature
        self.queue_size = queue_size
        # its own BERT weights, the online tower's tokenizer (no weights)
        self.target_text_encoder = text_encoder.with_backbone(
            target_copy(text_encoder.backbone), name=f"target_{text_encoder.name}"
        )
        self.target_text_projector = target_copy(text_projector)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        if not self.target_text_projector.built:
            self.target_text_projector.build(self.target_text_encoder.compute_output_shape((None,)))
        for target in self.target_text_encoder.weights + self.target_text_projector.weights:
            target.trainable = False
        dim = self.projection_shape(input_shape)[-1]
        self.image_queue = add_queue(self, self.queue_size, dim, "image_queue")
        self.text_queue = add_queue(self, self.queue_size, dim, "text_queue")

    def _online_target_pairs(self) -> list[tuple[keras.Variable, keras.Variable]]:
        text_pairs = zip(
            self.text_encoder.weights + self.text_projector.weights,
            self.target_text_encoder.weights + self.target_text_projector.weights,
        )
        return [*super()._online_target_pairs(), *text_pairs]

    def target_embed_texts(self, texts: tf.Tensor | dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        features = self.target_text_encoder(texts, training=training)
        return tf.stop_gradient(tf.math.l2_normalize(self.target_text_projector(features, training=training), -1))

    def compute_contrastive_loss(
        self, views: Sequence[tf.Tensor | dict[str, tf.Tensor]], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        images, texts, _ = self.unpack(views)
        z_images = tf.cast(self.embed_images(images, training=training), tf.float32)
        z_texts = tf.cast(self.embed_texts(texts, training=training), tf.float32)
        image_keys = tf.math.l2_normalize(tf.cast(self.target_project(images, training=training), tf.float32), -1)
        text_keys = tf.cast(self.target_embed_texts(texts, training=training), tf.float32)
        loss = wenlan_loss(
            z_images, z_texts, image_keys, text_keys, self.image_queue, self.text_queue, self.temperature
        )
        if training:
            enqueue(self.image_queue, image_keys)
            enqueue(self.text_queue, text_keys)
        return loss, (z_images, z_texts)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature, "queue_size": self.queue_size}
