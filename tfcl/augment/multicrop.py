"""SwAV's multi-crop views: 2 large crops and several small ones of a smaller size."""

from __future__ import annotations

import keras

from tfcl.augment.image import BLUR_MIN_SIZE, MultiView, view_pipeline


def multicrop_augmentation(
    image_size: int,
    channels: int = 3,
    num_small_crops: int = 6,
    small_size: int | None = None,
    large_scale: tuple[float, float] = (0.14, 1.0),
    small_scale: tuple[float, float] = (0.05, 0.14),
    jitter_strength: float = 0.5,
    seed: int | None = None,
) -> MultiView:
    """2 crops of ``image_size`` then ``num_small_crops`` of ``small_size`` (default: the paper's 96/224 ratio).

    Each crop is a SimCLR view (``view_pipeline``) with its own scale range; Gaussian blur (p 0.5) only for crops
    of ``BLUR_MIN_SIZE`` px and more, as in :func:`tfcl.augment.simclr_augmentation`.
    """
    small_size = small_size or round(image_size * 96 / 224)

    def crop(size: int, scale: tuple[float, float]) -> keras.Sequential:
        blur = 0.5 if size >= BLUR_MIN_SIZE else 0.0
        return view_pipeline(size, channels, scale, jitter_strength, blur_probability=blur, seed=seed)

    return MultiView(
        [crop(image_size, large_scale) for _ in range(2)]
        + [crop(small_size, small_scale) for _ in range(num_small_crops)]
    )
