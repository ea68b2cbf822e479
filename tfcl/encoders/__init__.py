"""Encoders f: images -> representation vectors."""

from tfcl.encoders.pictures import PictureEncoder, decode_picture
from tfcl.encoders.resnet import PRESETS, image_encoder, small_resnet

__all__ = ["PRESETS", "PictureEncoder", "decode_picture", "image_encoder", "small_resnet"]
