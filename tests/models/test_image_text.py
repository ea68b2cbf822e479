"""CLIP and WenLan: losses vs NumPy, the picture tower, logit scale, queues and momentum towers, saving,
two replicas."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from reference import assert_distributed_equivalence, log_softmax, normalise
from text_helpers import tiny_text_encoder

from tfcl.encoders import PictureEncoder, decode_picture
from tfcl.losses import clip_loss, wenlan_loss
from tfcl.models import CLIP, WenLan
from tfcl.text.tokenizer import BERT_SPECIAL_TOKENS, WEIBO_TOKENS

TEXTS = ["红色的猫", "绿色的狗", "足球比赛", "电影海报", "音乐现场", "蓝色的鱼", "一朵花", "一辆车"]
VOCABULARY = [*BERT_SPECIAL_TOKENS, *WEIBO_TOKENS, *sorted(set("".join(TEXTS)))]
SIZE, DIM = 16, 8


def tiny_picture_encoder(synchronized_bn=False):
    return PictureEncoder.from_preset(
        "resnet_cpu",
        image_size=SIZE,
        synchronized_bn=synchronized_bn,
        stem_filters=4,
        stage_filters=(8,),
        stage_blocks=(1,),
        stage_strides=(2,),
    )


def tiny_model(method, synchronized_bn=False, **overrides):
    towers = (
        tiny_picture_encoder(synchronized_bn),
        keras.layers.Dense(DIM),
        tiny_text_encoder(VOCABULARY, dropout=0.0),
        keras.layers.Dense(DIM),
    )
    if method == "clip":
        return CLIP(*towers, **overrides)
    return WenLan(*towers, **{"queue_size": 12, **overrides})


def random_images(n=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def batch(model, n=8, seed=0):
    """(uint8 images, text tokens): what training batches hold."""
    tokens = {key: value.numpy() for key, value in model.text_encoder.tokenize(tf.constant(TEXTS[:n])).items()}
    return random_images(n, seed), tokens


def clip_reference(images, texts, scale, labels=None):
    """Literal ½[CE(s·I·Tᵀ, arange) + CE(s·T·Iᵀ, arange)]; same-label candidates other than the positive dropped."""
    images, texts = normalise(images.astype(np.float64)), normalise(texts.astype(np.float64))
    labels = np.arange(len(images)) if labels is None else np.asarray(labels)
    losses = []
    for anchors, candidates in ((images, texts), (texts, images)):
        for i in range(len(anchors)):
            kept = [j for j in range(len(candidates)) if j == i or labels[j] != labels[i]]
            logits = scale * candidates[kept] @ anchors[i]
            losses.append(-log_softmax(logits[None])[0, kept.index(i)])
    return float(np.mean(losses))


def wenlan_reference(image_q, text_q, image_k, text_k, image_queue, text_queue, temperature):
    """Literal CE_i2t + CE_t2i: query i vs [its key from the other modality, that modality's queue]."""
    total = 0.0
    for queries, keys, queue in ((image_q, text_k, text_queue), (text_q, image_k, image_queue)):
        losses = []
        for i in range(len(queries)):
            logits = np.concatenate([[keys[i] @ queries[i]], queue @ queries[i]]) / temperature
            losses.append(-log_softmax(logits[None])[0, 0])
        total += np.mean(losses)
    return total


def unit(rng, *shape):
    return normalise(rng.normal(size=shape)).astype(np.float32)


def test_clip_loss_matches_numpy_reference_with_logit_scale_and_labels():
    rng = np.random.default_rng(0)
    images, texts = unit(rng, 6, 5), unit(rng, 6, 5)
    for scale in (1.0, 1 / 0.07, 100.0):
        np.testing.assert_allclose(
            clip_loss(images, texts, scale).numpy(), clip_reference(images, texts, scale), rtol=1e-5
        )
    labels = np.array([0, 1, 1, 2, 3, 3], np.int32)  # e.g. two pictures of one post
    np.testing.assert_allclose(
        clip_loss(images, texts, 14.0, labels).numpy(), clip_reference(images, texts, 14.0, labels), rtol=1e-5
    )


def test_wenlan_loss_matches_numpy_reference():
    rng = np.random.default_rng(1)
    args = [unit(rng, 5, 4) for _ in range(4)] + [unit(rng, 7, 4), unit(rng, 7, 4)]
    for temperature in (0.07, 0.5):
        np.testing.assert_allclose(
            wenlan_loss(*args, temperature).numpy(), wenlan_reference(*args, temperature), rtol=1e-5
        )


def test_picture_encoder_takes_png_and_jpeg_bytes_and_decoded_images():
    encoder = tiny_picture_encoder()
    images = random_images(3)
    png = [tf.io.encode_png(image).numpy() for image in images]
    np.testing.assert_allclose(encoder(tf.constant(png)).numpy(), encoder(images).numpy(), atol=1e-6)
    flat = np.full((20, 10, 3), 200, np.uint8)  # JPEG of one colour: fitted into 16 x 16 with white padding
    decoded = decode_picture(tf.io.encode_jpeg(flat, quality=100), SIZE).numpy()
    assert decoded.shape == (SIZE, SIZE, 3)
    assert np.abs(decoded[:, 6:10].astype(int) - 200).max() <= 2 and (decoded[:, :2] == 255).all()
    transparent = np.zeros((8, 8, 4), np.uint8)  # fully transparent PNG: white
    assert (decode_picture(tf.io.encode_png(transparent), SIZE).numpy() == 255).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match="neither JPEG nor PNG"):
        encoder(tf.constant([png[0], b"not a picture"]))
    with pytest.raises(tf.errors.InvalidArgumentError):
        encoder(tf.constant([png[0][:40]]))  # a PNG cut short


def test_picture_encoder_from_a_local_keras_hub_preset(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64],
        stackwise_num_blocks=[1],
        stackwise_num_strides=[1],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(None, None, 3),
    )
    backbone.save_to_preset(str(tmp_path / "preset"))
    encoder = PictureEncoder.from_preset(str(tmp_path / "preset"), image_size=SIZE)
    images = random_images(2)
    expected = np.mean(backbone(images.astype(np.float32) / 255).numpy(), axis=(1, 2))
    np.testing.assert_allclose(encoder(images).numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["clip", "wenlan"])
def test_model_loss_is_the_reference_on_its_own_embeddings(method):
    model = tiny_model(method)
    images, tokens = batch(model)
    loss, (z_images, z_texts) = model.compute_contrastive_loss((images, tokens), training=False)
    np.testing.assert_allclose(z_images.numpy(), model.embed_images(images).numpy(), atol=1e-6)
    np.testing.assert_allclose(z_texts.numpy(), model.embed_texts(tf.constant(TEXTS)).numpy(), atol=1e-5)
    if method == "clip":
        expected = clip_reference(z_images.numpy(), z_texts.numpy(), 1 / 0.07)
    else:  # in evaluation mode, the momentum towers (not yet updated) compute the keys
        image_keys = normalise(model.target_projector(model.target_encoder(images)).numpy())
        text_keys = model.target_embed_texts(tokens).numpy()
        expected = wenlan_reference(
            z_images.numpy(),
            z_texts.numpy(),
            image_keys,
            text_keys,
            np.asarray(model.image_queue),
            np.asarray(model.text_queue),
            0.07,
        )
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-4)
    with pytest.raises(ValueError, match="images, texts"):
        model.compute_contrastive_loss(images, training=False)


def test_logit_scale_starts_at_one_over_0_07_and_is_capped_at_100():
    model = tiny_model("clip")
    images, tokens = batch(model)
    model.compute_contrastive_loss((images, tokens), training=False)
    assert float(model.current_logit_scale()) == pytest.approx(1 / 0.07, rel=1e-5)
    assert model.log_logit_scale in model.trainable_variables
    model.log_logit_scale.assign(math.log(500.0))
    loss, (z_images, z_texts) = model.compute_contrastive_loss((images, tokens), training=False)
    np.testing.assert_allclose(loss.numpy(), clip_reference(z_images.numpy(), z_texts.numpy(), 100.0), rtol=1e-4)
    model.compile(optimizer=keras.optimizers.SGD(1e-3))
    history = model.fit(tf.data.Dataset.from_tensors((images, tokens)), verbose=0).history
    assert float(model.log_logit_scale) == pytest.approx(math.log(100.0))
    assert history["logit_scale"] == [pytest.approx(100.0)]


def fitted(model, steps=2, learning_rate=1e-2):
    images, tokens = batch(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.fit(tf.data.Dataset.from_tensors((images, tokens)).repeat(steps), verbose=0)
    return model


def assert_same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)


@pytest.mark.parametrize("method", ["clip", "wenlan"])
def test_keras_round_trip_keeps_towers_logit_scale_queues_and_momentum_towers(method, tmp_path):
    model = fitted(tiny_model(method))
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert type(restored) is type(model)
    assert_same_weights(restored, model)
    pictures = tf.constant([tf.io.encode_png(image).numpy() for image in random_images(3, seed=5)])
    np.testing.assert_allclose(restored.embed_images(pictures).numpy(), model.embed_images(pictures).numpy(), atol=1e-6)
    np.testing.assert_allclose(
        restored.embed_texts(tf.constant(TEXTS)).numpy(), model.embed_texts(tf.constant(TEXTS)).numpy(), atol=1e-6
    )
    if method == "clip":
        assert float(restored.log_logit_scale) != pytest.approx(math.log(1 / 0.07))  # trained, saved, restored
    else:
        assert restored.queue_size == 12 and restored.temperature == 0.07
        for online, target in (
            (restored.text_encoder, restored.target_text_encoder),
            (restored.encoder, restored.target_encoder),
        ):
            assert not np.allclose(online.trainable_weights[0], target.weights[0])  # EMA, not a copy
        assert_same_weights(restored.target_text_encoder, model.target_text_encoder)
        np.testing.assert_array_equal(np.asarray(restored.text_queue)[:16], np.asarray(model.text_queue)[:16])


def test_wenlan_weight_checkpoint_restores_queues_and_momentum_towers(tmp_path):
    model = fitted(tiny_model("wenlan"), steps=1)
    model.save_weights(tmp_path / "backup.weights.h5")
    fresh = tiny_model("wenlan")
    fresh.build((None, SIZE, SIZE, 3))
    fresh.load_weights(tmp_path / "backup.weights.h5")
    assert_same_weights(fresh, model)


def test_wenlan_enqueues_both_modalities_keys_and_follows_by_momentum():
    model = tiny_model("wenlan", base_momentum=0.9)
    images, tokens = batch(model)
    model.compute_contrastive_loss((images, tokens), training=False)
    old_image_queue, old_text_queue = np.asarray(model.image_queue), np.asarray(model.text_queue)
    online_before = [np.asarray(w) for w in model.text_encoder.weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(tf.data.Dataset.from_tensors((images, tokens)), verbose=0)
    np.testing.assert_array_equal(np.asarray(model.image_queue)[8:], old_image_queue[:4])
    np.testing.assert_array_equal(np.asarray(model.text_queue)[8:], old_text_queue[:4])
    np.testing.assert_allclose(np.linalg.norm(np.asarray(model.text_queue)[:8], axis=1), 1, rtol=1e-5)
    for online, target, old in zip(model.text_encoder.weights, model.target_text_encoder.weights, online_before):
        if online.trainable:  # copied at step 0, then θ_t ← 0.9 θ_t + 0.1 θ_online
            np.testing.assert_allclose(np.asarray(target), 0.9 * old + 0.1 * np.asarray(online), rtol=1e-5, atol=1e-6)
    targets = {id(v) for v in model.target_text_encoder.weights + model.target_encoder.weights}
    assert not targets & {id(v) for v in model.trainable_variables}


@pytest.mark.parametrize("method", ["clip", "wenlan"])
def test_two_replicas_equal_one_device(method):
    """One SGD step on 8 pairs: loss and every variable after it (logit scale, momentum towers, both queues, BN)."""
    keras.utils.set_random_seed(0)
    build = lambda: tiny_model(method, synchronized_bn=True)  # noqa: E731
    assert_distributed_equivalence(build, batch(build()))
