"""SavedModel export with explicit signatures (TF Serving layout: ``<base>/<model>/<version>/``)."""
import keras
import tensorflow as tf


def export_image_encoder(model, path, channels, normalize=True):
    """Export the encoder of ``model`` alone: float images [batch, H, W, channels] in [0, 1] → embeddings.

    Signatures: ``serving_default`` and ``embed`` (the same function), output key ``embedding``;
    L2-normalised when ``normalize``.
    """
    encoder = model.encoder if hasattr(model, "encoder") else model
    archive = keras.export.ExportArchive()
    archive.track(encoder)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32, name="images")])
    def embed(images):
        features = encoder(images, training=False)
        return {"embedding": tf.math.l2_normalize(features, axis=-1) if normalize else features}

    archive.add_endpoint("serving_default", embed)
    archive.add_endpoint("embed", embed)
    archive.write_out(str(path), verbose=False)
    return path
