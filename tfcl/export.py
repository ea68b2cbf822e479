"""SavedModel export with explicit signatures (TF Serving layout: ``<base>/<model>/<version>/``)."""
import keras
import tensorflow as tf


def image_input(channels):
    """Float images [batch, H, W, channels] in [0, 1]."""
    return tf.TensorSpec([None, None, None, channels], tf.float32, name="images")


TEXT_INPUT = tf.TensorSpec([None], tf.string, name="texts")  # a batch of raw UTF-8 strings


def export_encoder(model, path, input_spec):
    """Export the encoder of ``model`` (a tfcl method, or an encoder itself) alone as a SavedModel.

    Signatures ``serving_default`` and ``embed`` (the same function) map ``input_spec`` (:func:`image_input` or
    :data:`TEXT_INPUT`) to ``embedding``: the L2-normalised representation, without the projection head.
    """
    encoder = getattr(model, "encoder", model)
    archive = keras.export.ExportArchive()
    archive.track(encoder)

    @tf.function(input_signature=[input_spec])
    def embed(inputs):
        return {"embedding": tf.math.l2_normalize(encoder(inputs, training=False), axis=-1)}

    archive.add_endpoint("serving_default", embed)
    archive.add_endpoint("embed", embed)
    archive.write_out(str(path), verbose=False)
    return path
