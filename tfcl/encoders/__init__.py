"""Encoders f: images -> representation vectors."""
from tfcl.encoders.resnet import PRESETS, image_encoder, small_resnet

__all__ = ["PRESETS", "image_encoder", "small_resnet"]
