"""MoCo v2, BYOL, SimSiam, SwAV and Barlow Twins: training, saving and resuming, method mechanics (the contract every
method keeps, two replicas included, is tests/models/test_method_contract.py)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from tfcl.augment import simclr_augmentation
from tfcl.callbacks import CollapseGuard
from tfcl.encoders import image_encoder
from tfcl.heads import MLPHead
from tfcl.models import BYOL, MoCo, SimSiam, SwAV
from tfcl.registry import get_recipe

METHODS = ("moco", "byol", "simsiam", "swav", "barlow")
SIZE, SMALL_SIZE, DIM = 12, 8, 16
SMALL_ENCODER = dict(stem_filters=8, stage_filters=(8, 16), stage_blocks=(1, 1))


def cases(methods, slow):
    """``methods`` as parameters, those in ``slow`` marked to run in the slow suite only."""
    return [pytest.param(method, marks=pytest.mark.slow) if method in slow else method for method in methods]


def tiny_encoder(synchronized_bn=False):
    return image_encoder("resnet_cpu", channels=1, synchronized_bn=synchronized_bn, **SMALL_ENCODER)


def tiny_head(synchronized_bn=False, hidden=32, **kwargs):
    return MLPHead((hidden,), DIM, synchronized=synchronized_bn, **kwargs)


def recipe_model(method):
    """The registry's ``method`` (its heads and settings) on a tiny encoder."""
    return get_recipe(method).build_model(1, **SMALL_ENCODER)


def recipe_views(method, n=8, seed=0):
    """The registry's views of ``method`` of ``n`` random images of ``SIZE`` px."""
    images = np.random.default_rng(seed).random((n, SIZE, SIZE, 1), dtype=np.float32)
    return tuple(np.asarray(view) for view in get_recipe(method).views(SIZE, 1)(tf.constant(images)))


def swav_views(n=8, seed=0):
    """Two views of ``SIZE`` px and two small crops of ``SMALL_SIZE`` px."""
    rng = np.random.default_rng(seed)
    return tuple(rng.random((n, size, size, 1), dtype=np.float32) for size in (SIZE, SIZE, SMALL_SIZE, SMALL_SIZE))


def tiny_swav(**overrides):
    return SwAV(tiny_encoder(), tiny_head(), **{"num_prototypes": 10, "queue_size": 16, **overrides})


def fill_queue(model, seed=1):
    """Fills the queue of ``model`` (built here if needed) with unit vectors, so it takes part at once."""
    if not model.built:
        model.build((None, SIZE, SIZE, 1))
    rows = np.random.default_rng(seed).normal(size=model.queue.shape)
    model.queue.assign(rows / np.linalg.norm(rows, axis=-1, keepdims=True))
    return model


def fitted(model, views, steps, learning_rate=1e-3):
    model.compute_contrastive_loss(views, training=False)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.fit(tf.data.Dataset.from_tensor_slices(views).batch(len(views[0])).repeat(steps), verbose=0)
    return model


def method_settings(model):
    """The model's config without its layers (temperature, queue size, momentum, ...)."""
    return {k: v for k, v in model.get_config().items() if k not in ("encoder", "projector", "predictor")}


def assert_same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=y.path)


# The metrics are the base class's, on each method's pair of embeddings: a momentum method (MoCo) and a plain one
# (Barlow Twins) in the default suite; SimSiam's are also checked by test_simsiam_collapses_without_stop_gradient.
@pytest.mark.parametrize("method", cases(METHODS, slow={"byol", "simsiam", "swav"}))
def test_fit_with_callbacks_logs_the_collapse_metrics(method, tmp_path):
    images = np.random.default_rng(0).random((32, SIZE, SIZE, 1), dtype=np.float32)
    views = get_recipe(method).views(SIZE, 1)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(16, drop_remainder=True).map(views)
    model = recipe_model(method)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    logger = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    dim = model.projector.output_dim
    logs = model.fit(dataset, epochs=2, verbose=0, callbacks=[CollapseGuard(embedding_dim=dim), logger]).history
    for name in ("loss", "alignment", "uniformity", "embedding_std", "effective_rank"):
        assert len(logs[name]) == 2 and np.all(np.isfinite(logs[name])), name
    assert 0 < logs["embedding_std"][-1] < 1 and 1 <= logs["effective_rank"][-1] <= dim
    assert "embedding_std" in (tmp_path / "log.csv").read_text()


# SimSiam and Barlow Twins keep no state beyond weights and optimiser (their .keras round trip is also in
# tests/models/test_method_contract.py): their cases run in the slow suite.
@pytest.mark.parametrize("method", cases(METHODS, slow={"simsiam", "barlow"}))
def test_keras_round_trip_and_resumed_training(method, tmp_path):
    """Saved after 2 steps and loaded: same embeddings, same weights including target, queue and prototypes;
    one more step from the original and from the loaded model ends in the same state."""
    views = recipe_views(method)
    model = fitted(recipe_model(method), views, steps=2)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert type(restored) is type(model) and method_settings(restored) == method_settings(model)
    np.testing.assert_array_equal(restored(views[0]).numpy(), model(views[0]).numpy())
    assert_same_weights(restored, model)
    if method == "moco":
        assert np.any(np.asarray(restored.queue) != 0)  # the 2 batches enqueued, saved and restored
    if method in ("moco", "byol"):
        assert_same_weights(restored.target_encoder, model.target_encoder)
        assert not np.allclose(restored.target_encoder.weights[0], restored.encoder.weights[0])
    assert int(restored.optimizer.iterations) == 2

    step = tf.data.Dataset.from_tensor_slices(recipe_views(method, seed=1)).batch(8)
    model.fit(step, verbose=0)
    restored.fit(step, verbose=0)
    for x, y in zip(restored.weights, model.weights):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6, err_msg=x.path)


# BYOL's target towers are MoCo's (the momentum base class): its case runs in the slow suite.
@pytest.mark.parametrize("method", cases(["moco", "byol", "swav"], slow={"byol"}))
def test_weight_checkpoints_hold_target_and_queue(method, tmp_path):
    """``save_weights``/``load_weights`` (what ``BackupAndRestore`` uses) restore the non-trainable state too."""
    views = recipe_views(method)
    model = fitted(recipe_model(method), views, steps=1)
    model.save_weights(tmp_path / "backup.weights.h5")
    fresh = recipe_model(method)
    fresh.build((None, SIZE, SIZE, 1))
    fresh.load_weights(tmp_path / "backup.weights.h5")
    assert_same_weights(fresh, model)


def test_swav_queue_is_saved_and_restored(tmp_path):
    views = swav_views()
    model = fitted(tiny_swav(queue_size=8), views, steps=2)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert np.any(np.asarray(restored.queue) != 0)
    np.testing.assert_array_equal(np.asarray(restored.queue), np.asarray(model.queue))


def test_momentum_schedule_and_ema_update():
    views = recipe_views("byol")
    model = BYOL(tiny_encoder(), tiny_head(), tiny_head(), base_momentum=0.9, total_steps=4)
    model.compute_contrastive_loss(views, training=False)
    before = [np.asarray(w) for w in model.encoder.weights]
    target_ids = {id(v) for v in model.target_encoder.weights + model.target_projector.weights}
    assert not target_ids & {id(v) for v in model.trainable_variables}

    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(tf.data.Dataset.from_tensor_slices(views).batch(8), verbose=0)
    for online, target, old in zip(model.encoder.weights, model.target_encoder.weights, before):
        if online.trainable:  # the copy of the online weights at step 0, then θ_t ← 0.9 θ_t + 0.1 θ_online
            np.testing.assert_allclose(np.asarray(target), 0.9 * old + 0.1 * np.asarray(online), rtol=1e-5, atol=1e-7)
    for step in range(5):
        model.optimizer.iterations.assign(step + 1)
        expected = 1 - 0.1 * (math.cos(math.pi * step / 4) + 1) / 2
        assert float(model.momentum()) == pytest.approx(expected, rel=1e-6)
    assert float(BYOL(tiny_encoder(), tiny_head(), tiny_head(), base_momentum=0.97).momentum()) == pytest.approx(0.97)


def test_moco_enqueues_the_batch_keys_newest_first():
    views = recipe_views("moco")
    model = MoCo(tiny_encoder(), tiny_head(), queue_size=12, total_steps=10)
    model.compute_contrastive_loss(views, training=False)
    old_queue = np.asarray(model.queue)
    np.testing.assert_allclose(np.linalg.norm(old_queue, axis=1), 1, rtol=1e-5)
    # at step 0 the target is a copy of the online network; batch norm in training mode uses batch statistics
    keys = tf.math.l2_normalize(model.project(views[1], training=True), axis=-1).numpy()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(tf.data.Dataset.from_tensor_slices(views).batch(8), verbose=0)
    queue = np.asarray(model.queue)
    np.testing.assert_allclose(queue[:8], keys, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(queue[8:], old_queue[:4])


def test_swav_freezes_then_trains_unit_norm_prototypes():
    views = swav_views()
    model = tiny_swav(queue_size=0, freeze_prototypes_steps=2)
    model.compute_contrastive_loss(views, training=False)
    initial = np.asarray(model.prototypes)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    dataset = tf.data.Dataset.from_tensor_slices(views).batch(8)
    model.fit(dataset.repeat(2), verbose=0)
    np.testing.assert_allclose(np.asarray(model.prototypes), initial, rtol=1e-6, atol=1e-7)
    model.fit(dataset, verbose=0)
    prototypes = np.asarray(model.prototypes)
    assert not np.allclose(prototypes, initial, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(prototypes, axis=0), 1, rtol=1e-5)


def test_swav_embeds_crops_per_resolution_and_uses_the_queue_once_full():
    views = swav_views()
    model = tiny_swav(queue_size=16)
    loss_empty = model.compute_contrastive_loss(views, training=False)[0]
    per_crop = [tf.math.l2_normalize(model.project(view), axis=-1) for view in views]
    for grouped, alone in zip(model.embed_crops(views), per_crop):
        np.testing.assert_allclose(grouped.numpy(), alone.numpy(), rtol=1e-5, atol=1e-6)
    without_queue = tiny_swav(queue_size=0)
    without_queue.compute_contrastive_loss(views, training=False)
    without_queue.set_weights([w for w in model.get_weights() if w.shape != model.queue.shape])
    assert float(without_queue.compute_contrastive_loss(views, training=False)[0]) == pytest.approx(float(loss_empty))
    fill_queue(model)
    assert float(model.compute_contrastive_loss(views, training=False)[0]) != pytest.approx(float(loss_empty))


def digit_views(batch_size=64, count=512, seed=0):
    """Fixed augmented views of scikit-learn's 8x8 digits, resized to 16 px."""
    images = load_digits().images[:count, :, :, None].astype("float32") / 16.0
    images = tf.image.resize(images, (16, 16)).numpy()
    augmentation = simclr_augmentation(16, channels=1, crop_scale=(0.2, 1.0))
    return (
        tf.data.Dataset.from_tensor_slices(images)
        .shuffle(count, seed=seed)
        .batch(batch_size, drop_remainder=True)
        .map(augmentation)
        .cache()
    )


def test_simsiam_collapses_without_stop_gradient():
    """The paper's ablation: without the stop-gradient the loss goes to −1 and the embedding std to 0.

    The projector here ends without batch norm: with it, collapse needs BN's γ to shrink first, which takes
    many more steps; the stop-gradient is the only difference between the two runs.
    """
    keras.utils.set_random_seed(0)
    dataset = digit_views()

    def train(stop_gradient):
        model = SimSiam(tiny_encoder(), MLPHead((32,), 32), MLPHead((8,), 32), stop_gradient=stop_gradient)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        guard = CollapseGuard(embedding_dim=32)
        return guard, model.fit(dataset, epochs=6, verbose=0, callbacks=[guard]).history

    guard, history = train(stop_gradient=True)
    assert guard.collapsed_at is None and history["embedding_std"][-1] > 0.5 / math.sqrt(32)
    with pytest.warns(RuntimeWarning, match="Representation collapse"):
        guard, history = train(stop_gradient=False)
    assert guard.collapsed_at is not None and history["embedding_std"][-1] < 0.2 / math.sqrt(32)
    assert history["loss"][-1] < -0.95
