"""Test set-up: two logical CPU devices (for the distributed-equivalence tests), quiet TensorFlow, and the
session-wide fixtures of expensive artefacts that several test files share."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture(scope="session")
def weibo_topics_export(tmp_path_factory):
    """The main job's tiny untrained topics SavedModel, exported once: publish it with ``serving_models.copy_of``."""
    from serving_models import export_weibo_topics

    path = tmp_path_factory.mktemp("weibo_topics_export") / "model"
    export_weibo_topics(path)
    return path


@pytest.fixture(scope="session")
def simclr_run_killed_after_two_epochs(tmp_path_factory):
    """The folder ``training_helpers.interrupted_run(..., after_epochs=2)`` leaves, made once: copy it to resume."""
    from training_helpers import interrupted_run

    path = tmp_path_factory.mktemp("simclr_run_killed_after_two_epochs")
    interrupted_run(path, after_epochs=2)
    return path
