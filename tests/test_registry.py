"""The registry: every method is listed by ``tfcl train``, and a method added by one entry trains through the
same code path as the built-in ones (``tfcl train NAME``)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcl import registry
from tfcl.cli import main
from tfcl.heads import MLPHead
from tfcl.models import ContrastiveModel
from tfcl.recipes.image import image_recipe


def variance_invariance_loss(z_a, z_b):
    """A VICReg-like loss: the views agree (invariance) while each dimension keeps a standard deviation of 1."""
    invariance = tf.reduce_mean(tf.square(z_a - z_b))
    spread = [tf.reduce_mean(tf.nn.relu(1.0 - tf.sqrt(tf.math.reduce_variance(z, axis=0) + 1e-4))) for z in (z_a, z_b)]
    return invariance + tf.add_n(spread)


@keras.saving.register_keras_serializable(package="tests")
class ToyMethod(ContrastiveModel):
    """A method the library does not ship: its loss and model are all a new method needs besides its entry."""

    def compute_contrastive_loss(self, views, training):
        z_a, z_b = (self.project(view, training=training) for view in views[:2])
        return variance_invariance_loss(z_a, z_b), (z_a, z_b)


@pytest.fixture
def toy_method():
    """One registry entry, removed after the test."""
    from tfcl.augment import simclr_augmentation

    recipe = registry.register(
        image_recipe(
            "toy",
            lambda encoder, sync: ToyMethod(encoder, MLPHead((32,), 16, synchronized=sync)),
            lambda size, channels: simclr_augmentation(size, channels, crop_scale=(0.2, 1.0)),
            summary="a VICReg-like toy method registered by the test",
            batch_size=16,
            export=registry.export_image_encoder,
        )
    )
    yield recipe
    del registry.RECIPES[recipe.name]


def test_the_registry_serves_every_method_and_refuses_unknown_or_taken_names():
    expected = {"simclr", "moco", "swav", "byol", "simsiam", "barlow", "simcse", "clip", "wenlan", "cdtom", "wclip"}
    expected |= {"simcse-weibo", "simcse-sup", "simcse-sup-paraphrase", "cosent"}
    assert set(registry.method_names()) == expected
    assert registry.get_recipe("moco").name == "moco"
    with pytest.raises(ValueError, match="Unknown method 'vicreg'; choose one of barlow, byol"):
        registry.get_recipe("vicreg")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get_recipe("simclr"))
    assert registry.wclip_recipe("in_batch").name == "clip" and registry.wclip_recipe("queue").name == "wenlan"


def test_a_registered_method_is_listed_and_trains_through_the_cli(toy_method, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    listing = capsys.readouterr().out
    assert all(name in listing for name in registry.method_names()) and toy_method.summary in listing

    out = tmp_path / "run"
    arguments = ["--data", "mnist_5k", "--epochs", "1", "--steps-per-epoch", "1", "--eval-every", "0"]
    assert main(["train", "toy", *arguments, "--batch-size", "8", "--out", str(out)]) == 0
    assert f"saved {out}/model.keras and the SavedModel {out}/encoder" in capsys.readouterr().out
    model = keras.saving.load_model(out / "model.keras")
    assert isinstance(model, ToyMethod) and int(model.optimizer.iterations) == 1
    assert np.isfinite(json.loads((out / "history.json").read_text())["loss"]).all()
    images = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    embedding = tf.saved_model.load(str(out / "encoder")).signatures["embed"](images=tf.constant(images))
    assert embedding["embedding"].shape == model.encoder(images).shape
    metadata = (out / "logs" / "projector" / "metadata.tsv").read_text().splitlines()
    assert metadata[0] == "label" and len(metadata) == 1 + 500, "the projector's sample of the test split"
    assert (out / "logs" / "projector" / "sprite.png").exists()
