"""SavedModel export with explicit signatures (TF Serving layout: ``<base>/<model>/<version>/``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf


def image_input(channels: int) -> tf.TensorSpec:
    """Float images [batch, H, W, channels] in [0, 1]."""
    return tf.TensorSpec([None, None, None, channels], tf.float32, name="images")


TEXT_INPUT = tf.TensorSpec([None], tf.string, name="texts")  # a batch of raw UTF-8 strings
PICTURE_INPUT = tf.TensorSpec([None], tf.string, name="pictures")  # a batch of encoded JPEG/PNG files


def export_encoder(model: keras.Model, path: str | Path, input_spec: tf.TensorSpec) -> str | Path:
    """Export the encoder of ``model`` (a tfcl method, or an encoder itself) alone as a SavedModel.

    Signatures ``serving_default`` and ``embed`` (the same function) map ``input_spec`` (:func:`image_input`,
    :data:`TEXT_INPUT`, or :data:`PICTURE_INPUT` for a :class:`tfcl.encoders.PictureEncoder`) to ``embedding``:
    the L2-normalised representation, without the projection head.
    """
    encoder = getattr(model, "encoder", model)
    archive = keras.export.ExportArchive()
    archive.track(encoder)

    @tf.function(input_signature=[input_spec])
    def embed(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embedding": tf.math.l2_normalize(encoder(inputs, training=False), axis=-1)}

    archive.add_endpoint("serving_default", embed)
    archive.add_endpoint("embed", embed)
    archive.write_out(str(path), verbose=False)
    return path


def write_signatures(
    path: str | Path, trackables: Sequence[Any], signatures: Mapping[str, tf.types.experimental.GenericFunction]
) -> str | Path:
    """One SavedModel at ``path`` of the ``trackables`` (models, modules with indexes) and the ``signatures``
    (``{name: tf.function with an input signature}``); returns ``path``."""
    archive = keras.export.ExportArchive()
    for trackable in trackables:
        archive.track(trackable)
    for name, function in signatures.items():
        archive.add_endpoint(name, function)
    archive.write_out(str(path), verbose=False)
    return path
