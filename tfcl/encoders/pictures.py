"""Image tower with its preprocessing inside: encoded JPEG/PNG bytes (or decoded images) → pooled features.

Decoding is part of the model, so an exported SavedModel takes the bytes of a picture file as they are and
decodes them exactly as the training pipeline did (:func:`decode_picture`, also used by
:func:`tfcl.data.images.decode_over_white`).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfcl.encoders.resnet import image_encoder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_picture(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """JPEG or PNG bytes → RGB uint8 ``[image_size, image_size, 3]``: transparency composited over white, the
    picture fitted in with its aspect ratio kept and white padding. Other bytes raise ``InvalidArgumentError``."""
    is_png = tf.equal(tf.strings.substr(encoded, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE)
    check = tf.debugging.Assert(is_png | tf.io.is_jpeg(encoded), ["picture bytes are neither JPEG nor PNG"])
    with tf.control_dependencies([check]):
        rgba = tf.cond(
            is_png,
            lambda: tf.io.decode_png(encoded, channels=4),
            lambda: tf.pad(tf.io.decode_jpeg(encoded, channels=3), [[0, 0], [0, 0], [0, 1]], constant_values=255),
        )
    rgba = tf.image.convert_image_dtype(rgba, tf.float32)
    alpha = rgba[..., 3:]
    premultiplied = tf.concat([rgba[..., :3] * alpha, alpha], axis=-1)
    resized = tf.image.resize_with_pad(premultiplied, image_size, image_size, antialias=True)
    rgb = resized[..., :3] + 1.0 - resized[..., 3:]
    return tf.image.convert_image_dtype(tf.clip_by_value(rgb, 0.0, 1.0), tf.uint8)


@keras.saving.register_keras_serializable(package="tfcl")
class PictureEncoder(keras.Model):
    """Maps pictures to ``[batch, features]``.

    Input: a ``[batch]`` string tensor of encoded JPEG/PNG files (decoded by :func:`decode_picture` to
    ``image_size`` × ``image_size``), or decoded RGB images ``[batch, H, W, 3]``: ``uint8``, or floats in [0, 1].
    Pixels reach the backbone as floats in [0, 1]. Decoded uint8 images (faster to train on: decode once) and the
    bytes they were decoded from give the same features.

    Args:
      backbone: images ``[batch, H, W, 3]`` in [0, 1] → pooled features ``[batch, d]`` (see
        :func:`tfcl.encoders.image_encoder`: the small ResNets, or a keras-hub preset, a local directory too).
      image_size: side of the square the bytes are decoded to.
    """

    def __init__(self, backbone: keras.Model, image_size: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self.image_size = image_size
        self.built = True  # every weight is the backbone's, built at construction

    @classmethod
    def from_preset(
        cls, name: str = "resnet_cpu", image_size: int = 64, synchronized_bn: bool = False, **overrides
    ) -> PictureEncoder:
        """A :func:`tfcl.encoders.image_encoder` backbone (preset name or keras-hub preset) behind the decoder."""
        return cls(image_encoder(name, channels=3, synchronized_bn=synchronized_bn, **overrides), image_size)

    @property
    def output_dim(self) -> int:
        return self.backbone.output_shape[-1]

    def decode(self, pictures: tf.Tensor) -> tf.Tensor:
        """uint8 ``[batch, image_size, image_size, 3]`` of a ``[batch]`` string tensor of encoded pictures."""
        return tf.map_fn(
            lambda encoded: decode_picture(encoded, self.image_size),
            pictures,
            fn_output_signature=tf.TensorSpec([self.image_size, self.image_size, 3], tf.uint8),
        )

    def call(self, pictures: tf.Tensor, training: bool = False) -> tf.Tensor:
        images = self.decode(pictures) if pictures.dtype == tf.string else pictures
        if images.dtype == tf.uint8:
            images = tf.cast(images, self.compute_dtype) / 255.0
        return self.backbone(tf.cast(images, self.compute_dtype), training=training)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, int]:
        return (input_shape[0], self.output_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "image_size": self.image_size,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PictureEncoder:
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
