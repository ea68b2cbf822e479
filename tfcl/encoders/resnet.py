"""ResNets for small images (3x3 stem, no max-pool) and their configurable CPU-sized variants.

keras-hub's ``ResNetBackbone`` always downsamples 4x in its stem (stride-2 conv + max-pool), which leaves 7x7 maps
for 28-px images, and its batch norm cannot be synchronised across replicas; so the small-image ResNet is built
here from Keras layers, and ``keras_hub`` backbones are available through :func:`image_encoder` for presets.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

PRESETS = {
    # He et al. 2016 ResNet-18 widths/depths with the CIFAR stem.
    "resnet18": {
        "stem_filters": 64,
        "stage_filters": (64, 128, 256, 512),
        "stage_blocks": (2, 2, 2, 2),
        "stage_strides": (1, 2, 2, 2),
    },
    # Narrow and shallow, halving the size in every stage (28 px → 14, 7, 4): trains at useful speed on 2 CPU cores.
    "resnet_cpu": {
        "stem_filters": 16,
        "stage_filters": (32, 64, 128),
        "stage_blocks": (1, 1, 1),
        "stage_strides": (2, 2, 2),
    },
}


def _batch_norm(synchronized: bool, name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=synchronized, name=name)


def _basic_block(x: keras.KerasTensor, filters: int, stride: int, synchronized: bool, name: str) -> keras.KerasTensor:
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = _batch_norm(synchronized, f"{name}_proj_bn")(shortcut)
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = _batch_norm(synchronized, f"{name}_bn1")(x)
    x = keras.layers.ReLU(name=f"{name}_relu1")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = _batch_norm(synchronized, f"{name}_bn2")(x)
    x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def small_resnet(
    stem_filters: int = 64,
    stage_filters: Sequence[int] = (64, 128, 256, 512),
    stage_blocks: Sequence[int] = (2, 2, 2, 2),
    stage_strides: Sequence[int] = (1, 2, 2, 2),
    channels: int = 3,
    synchronized_bn: bool = False,
    name: str = "resnet",
) -> keras.Model:
    """A ResNet with a 3x3 stride-1 stem and no max-pool; returns a functional model images -> pooled features.

    Input: float images in [0, 1] of any size, ``channels`` channels. Stage ``i`` starts with stride
    ``stage_strides[i]``.
    """
    images = keras.Input((None, None, channels), name="images")
    x = keras.layers.Conv2D(stem_filters, 3, padding="same", use_bias=False, name="stem_conv")(images)
    x = _batch_norm(synchronized_bn, "stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, (filters, blocks, first_stride) in enumerate(zip(stage_filters, stage_blocks, stage_strides)):
        for block in range(blocks):
            stride = first_stride if block == 0 else 1
            x = _basic_block(x, filters, stride, synchronized_bn, name=f"stage{stage + 1}_block{block + 1}")
    features = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(images, features, name=name)


def image_encoder(
    name: str = "resnet_cpu", channels: int = 3, synchronized_bn: bool = False, **overrides
) -> keras.Model:
    """A small-image ResNet by preset name (``resnet18``, ``resnet_cpu``) with optional width/depth overrides,
    or a keras-hub backbone preset (a name or a local directory holding one) followed by global pooling."""
    if name in PRESETS:
        config = {**PRESETS[name], **overrides}
        return small_resnet(channels=channels, synchronized_bn=synchronized_bn, name=name, **config)
    import keras_hub

    backbone = keras_hub.models.Backbone.from_preset(name, **overrides)
    images = keras.Input((None, None, channels), name="images")
    features = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(images))
    return keras.Model(images, features, name="hub_encoder")
