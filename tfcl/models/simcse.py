"""SimCSE: sentence embeddings from dropout noise (unsupervised) or labelled triples (supervised)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfcl.losses.simcse import simcse_loss
from tfcl.models.base import ContrastiveModel


@keras.saving.register_keras_serializable(package="tfcl")
class SimCSE(ContrastiveModel):
    """Gao et al. 2021 over a text encoder (e.g. :class:`tfcl.text.TextEncoder`).

    Unsupervised (``supervised=False``): the data set yields batches of sentences (or 1-tuples of them); each
    batch goes through the encoder twice in one pass, so the two copies get different dropout masks and form the
    positive pair. Supervised: the data set yields ``(anchor, positive, hard_negative)`` batches. A batch of
    sentences is strings, or their tokens (``TextEncoder.tokenize`` mapped in ``tf.data``), which training under
    ``tf.distribute`` needs (see :class:`tfcl.text.TextEncoder`). The projector (SimCSE: one dense layer + tanh)
    is used during training only; ``call`` returns the encoder's representation.
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        temperature: float = 0.05,
        supervised: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(encoder, projector, **kwargs)
        self.temperature = temperature
        self.supervised = supervised

    def compute_contrastive_loss(
        self, views: tf.Tensor | dict[str, tf.Tensor] | Sequence[tf.Tensor | dict[str, tf.Tensor]], training: bool
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        if self.supervised:
            if not isinstance(views, (tuple, list)) or len(views) != 3:
                raise ValueError("Supervised SimCSE takes (anchor, positive, hard_negative) batches of sentences.")
        else:
            sentences = views[0] if isinstance(views, (tuple, list)) else views
            views = (sentences, sentences)
        batch = tf.nest.map_structure(lambda *parts: tf.concat(parts, axis=0), *views)
        z = tf.split(tf.math.l2_normalize(self.project(batch, training=training), axis=-1), len(views), axis=0)
        loss = simcse_loss(z[0], z[1], z[2] if self.supervised else None, self.temperature)
        return loss, (z[0], z[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature, "supervised": self.supervised}
