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
    (``{name: tf.function with an input signature}``), with its warm-up requests (:func:`write_warmup_requests`);
    returns ``path``."""
    archive = keras.export.ExportArchive()
    for trackable in trackables:
        archive.track(trackable)
    for name, function in signatures.items():
        archive.add_endpoint(name, function)
    archive.write_out(str(path), verbose=False)
    write_warmup_requests(path)
    return path


WARMUP_REQUESTS = "assets.extra/tf_serving_warmup_requests"  # where TF Serving looks for a version's warm-up


def write_warmup_requests(path: str | Path) -> list[str] | None:
    """Write ``<path>/assets.extra/tf_serving_warmup_requests``: one ``PredictionLog`` per signature of the
    SavedModel at ``path``, with a one-row request that it answers, for TF Serving (and ``tfcl serve``) to replay
    before the version takes traffic, so that the first real requests do not pay for the first calls.

    A string input gets a short text, or where the signature refuses text, a small JPEG (a picture input);
    numeric inputs get zeros (unknown dimensions past the batch: 32). Returns the signatures written, or None
    without ``tensorflow-serving-api`` (the ``serving`` extra).
    """
    try:
        from tensorflow_serving.apis import prediction_log_pb2
    except ImportError:
        return None
    signatures = tf.saved_model.load(str(path)).signatures
    jpeg = tf.io.encode_jpeg(tf.zeros([8, 8, 3], tf.uint8)).numpy()
    records = {}
    for name, function in signatures.items():
        specs = function.structured_input_signature[1]
        for text_or_picture in ("warm-up 预热", jpeg):
            inputs = {
                key: tf.constant([text_or_picture])
                if spec.dtype == tf.string
                else tf.zeros([1, *[32 if size is None else size for size in spec.shape[1:]]], spec.dtype)
                for key, spec in specs.items()
            }
            try:
                function(**inputs)
            except (tf.errors.OpError, ValueError, TypeError):
                continue
            log = prediction_log_pb2.PredictionLog()
            log.predict_log.request.model_spec.signature_name = name
            for key, value in inputs.items():
                log.predict_log.request.inputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            records[name] = log.SerializeToString()
            break
    warmup_file = f"{path}/{WARMUP_REQUESTS}"
    tf.io.gfile.makedirs(f"{path}/assets.extra")
    with tf.io.TFRecordWriter(warmup_file) as writer:
        for record in records.values():
            writer.write(record)
    return list(records)
