import keras
import numpy as np
import pytest
import tensorflow as tf
from reference import assert_distributed_equivalence

from tfcl.augment import simclr_augmentation
from tfcl.callbacks import CollapseGuard, EncoderEvaluation
from tfcl.encoders import image_encoder
from tfcl.export import export_encoder, image_input
from tfcl.heads import MLPHead
from tfcl.models import SimCLR


def tiny_simclr(synchronized_bn=False):
    encoder = image_encoder(
        "resnet_cpu",
        channels=1,
        stem_filters=8,
        stage_filters=(8, 16),
        stage_blocks=(1, 1),
        synchronized_bn=synchronized_bn,
    )
    return SimCLR(encoder, MLPHead((32,), 16, synchronized=synchronized_bn), temperature=0.5)


def random_views(n=8, size=12, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.random((n, size, size, 1), dtype=np.float32) for _ in range(2))


def test_fit_reports_loss_and_collapse_metrics_and_runs_callbacks(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((64, 12, 12, 1), dtype=np.float32)
    labels = np.arange(64) % 4
    dataset = (
        tf.data.Dataset.from_tensor_slices(images)
        .batch(16, drop_remainder=True)
        .map(simclr_augmentation(12, channels=1))
    )
    model = tiny_simclr()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    evaluation = EncoderEvaluation((images, labels), (images[:16], labels[:16]), protocol="knn", k=5)
    history = model.fit(
        dataset,
        epochs=2,
        verbose=0,
        callbacks=[CollapseGuard(embedding_dim=16), evaluation, keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))],
    )
    logs = history.history
    for name in ("loss", "alignment", "uniformity", "embedding_std", "effective_rank", "knn_top1"):
        assert len(logs[name]) == 2 and np.all(np.isfinite(logs[name])), name
    assert 0 < logs["embedding_std"][-1] < 1
    assert 1 <= logs["effective_rank"][-1] <= 16
    assert "knn_top1" in (tmp_path / "log.csv").read_text()


def test_training_lowers_the_loss():
    views = random_views(32)
    dataset = tf.data.Dataset.from_tensor_slices(views).batch(32).repeat(30)
    model = tiny_simclr()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    loss = model.fit(dataset, epochs=1, verbose=0).history["loss"]
    before = float(model.compute_contrastive_loss(views, training=False)[0])
    model.fit(dataset, epochs=1, verbose=0)
    after = float(model.compute_contrastive_loss(views, training=False)[0])
    assert after < before and np.isfinite(loss[0])


def test_keras_round_trip_gives_identical_embeddings(tmp_path):
    model = tiny_simclr()
    views = random_views()
    model.compute_contrastive_loss(views, training=False)
    path = tmp_path / "simclr.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, SimCLR) and restored.temperature == 0.5
    np.testing.assert_array_equal(restored(views[0]).numpy(), model(views[0]).numpy())
    np.testing.assert_allclose(restored.project(views[0]).numpy(), model.project(views[0]).numpy(), rtol=1e-6)


def test_exported_encoder_matches_keras(tmp_path):
    model = tiny_simclr()
    views = random_views()
    model(views[0])
    export_encoder(model, tmp_path / "encoder", image_input(1))
    loaded = tf.saved_model.load(str(tmp_path / "encoder"))
    assert set(loaded.signatures) == {"serving_default", "embed"}
    exported = loaded.signatures["embed"](images=tf.constant(views[0]))["embedding"].numpy()
    expected = tf.math.l2_normalize(model(views[0]), axis=-1).numpy()
    np.testing.assert_allclose(exported, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("synchronized_bn", [True])
def test_two_replicas_equal_one_device(synchronized_bn):
    assert_distributed_equivalence(lambda: tiny_simclr(synchronized_bn), random_views(8))


def test_unsynchronised_batch_norm_is_not_equivalent():
    """The check above can fail: without synchronised BN, per-replica statistics change the step."""
    with pytest.raises(AssertionError):
        assert_distributed_equivalence(lambda: tiny_simclr(False), random_views(8))


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_mixed_precision_training_uses_float16_compute_and_a_scaled_loss(mixed_precision):
    model = tiny_simclr()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    views = random_views(16)
    history = model.fit(tf.data.Dataset.from_tensor_slices(views).batch(16).repeat(3), verbose=0)
    assert model.project(views[0]).dtype == "float16"
    assert np.isfinite(history.history["loss"]).all()


def test_xla_compiled_step_matches_the_plain_step():
    views = random_views(16)
    losses = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(0)
        model = tiny_simclr()
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit_compile)
        history = model.fit(tf.data.Dataset.from_tensor_slices(views).batch(16).repeat(2), verbose=0)
        losses.append(history.history["loss"][0])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-3)
