"""Shared pieces of the training tests: a killed run and a few small images."""

import keras
import numpy as np


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
