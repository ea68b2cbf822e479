import numpy as np
import pytest
import tensorflow as tf

from tfcl.augment import byol_augmentation, simclr_augmentation, view_dataset
from tfcl.augment.image import BLUR_MIN_SIZE


def distinct(batch):
    return len({np.asarray(image).tobytes() for image in batch})


@pytest.mark.parametrize("preset", [simclr_augmentation, byol_augmentation])
@pytest.mark.parametrize("channels", [1, 3])
def test_views_are_random_per_sample_for_grey_and_colour(preset, channels):
    rng = np.random.default_rng(0)
    image = rng.random((32, 32, channels), dtype=np.float32)
    batch = np.repeat(image[None], 16, axis=0)  # sixteen copies of one image
    view_1, view_2 = preset(32, channels)(batch)
    assert view_1.shape == view_2.shape == (16, 32, 32, channels)
    assert distinct(view_1) == 16 and distinct(view_2) == 16, "each copy must get its own crop/jitter"
    assert not np.allclose(view_1, view_2)
    # [0, 1] up to float rounding (a Gaussian blur's weights sum to 1 within ~1e-7)
    assert float(tf.reduce_min(view_1)) >= -1e-5 and float(tf.reduce_max(view_1)) <= 1 + 1e-5


def random_transforms(pipeline):
    """Names of the transforms a view pipeline applies at random (inside ``RandomApply``)."""
    return {type(layer._layer).__name__ for layer in pipeline.layers if hasattr(layer, "_layer")}


@pytest.mark.parametrize("size", [28, BLUR_MIN_SIZE])
def test_byol_views_are_asymmetric_and_blurred_only_when_large(size):
    view_1, view_2 = (random_transforms(p) for p in byol_augmentation(size, 1).pipelines)
    assert "Solarization" in view_2 and "Solarization" not in view_1
    blurred = {"RandomGaussianBlur" in view_1, "RandomGaussianBlur" in view_2}
    assert blurred == {size >= BLUR_MIN_SIZE}


def test_view_dataset_runs_in_a_parallel_pipeline_from_uint8():
    images = np.random.default_rng(1).integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)
    dataset = view_dataset(images, simclr_augmentation(28, 1), batch_size=8, seed=0)
    batches = list(dataset)
    assert len(batches) == 5  # drop_remainder keeps full batches only
    view_1, view_2 = batches[0]
    assert view_1.dtype == tf.float32 and view_1.shape == (8, 28, 28, 1)
    assert distinct(view_1.numpy()) == 8
