"""Shared pieces of the training tests: a killed run, a few small images and a short SimCLR run to kill."""

import keras
import numpy as np
import pytest


class Interrupt(keras.callbacks.Callback):
    """Simulates a killed run: raises after ``epoch`` epochs have finished (and been backed up)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


def small_images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 16, 16, 1), dtype=np.uint8), np.arange(n) % 4


# A short SimCLR run that the resume tests kill and start again.
RUN_OPTIONS = dict(epochs=3, batch_size=16, steps_per_epoch=2, verbose=0, encoder="resnet_cpu", learning_rate=1e-3)


def train_simclr(out_dir, **options):
    """``train_image_method`` of SimCLR on :func:`small_images` with :data:`RUN_OPTIONS`, into ``out_dir``."""
    from tfcl.recipes.image import train_image_method
    from tfcl.registry import get_recipe

    return train_image_method(get_recipe("simclr"), small_images(), out_dir=out_dir, **RUN_OPTIONS, **options)


def interrupted_run(out_dir, after_epochs):
    """Leave in ``out_dir`` what :func:`train_simclr` leaves when killed after ``after_epochs`` epochs (backed up)."""
    with pytest.raises(KeyboardInterrupt):
        train_simclr(out_dir, extra_callbacks=[Interrupt(after_epochs)])
