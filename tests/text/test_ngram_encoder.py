import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcl.export import TEXT_INPUT, export_encoder
from tfcl.text import NgramEncoder
from tfcl.text.ngram import character_ngrams

TEXTS = ["我爱北京天安门！", "", "😂😂😂", "转发 @小明: 哈哈[哈哈] http://t.cn/x", "好" * 100_000, "ＡＢＣ abc"]


def tiny(**overrides):
    keras.utils.set_random_seed(0)
    return NgramEncoder(**{"num_buckets": 512, "orders": (1, 2), "embedding_dim": 8, "max_ngrams": 16, **overrides})


def test_ngrams_are_the_normalised_characters_and_their_neighbours():
    grams = character_ngrams(tf.constant(["北京 ＡＢ", ""]), orders=(1, 2)).to_list()
    assert [g.decode() for g in grams[0]] == ["北", "京", "a", "b", "北京", "京a", "ab"]
    assert grams[1] == []


def test_embedding_is_the_weighted_mean_of_its_ngram_embeddings():
    encoder = tiny(max_ngrams=64)
    encoder.weights_per_bucket.embeddings.assign(np.random.default_rng(0).normal(size=(513, 1)).astype("float32"))
    ids = encoder.ngram_ids(tf.constant(["今天天气好"])).to_list()[0]
    table = encoder.embeddings.embeddings.numpy()
    weights = np.log1p(np.exp(encoder.weights_per_bucket.embeddings.numpy()[ids, 0]))  # softplus
    expected = (weights[:, None] * table[ids]).sum(0) / weights.sum()
    assert len(ids) == 5 + 4
    np.testing.assert_allclose(encoder(tf.constant(["今天天气好"])).numpy()[0], expected, rtol=1e-5, atol=1e-6)


def test_tricky_text_gives_finite_embeddings_and_strings_equal_tokens():
    encoder = tiny()
    embeddings = encoder(tf.constant(TEXTS)).numpy()
    assert embeddings.shape == (len(TEXTS), 8) and np.all(np.isfinite(embeddings))
    np.testing.assert_array_equal(embeddings[1], 0.0)  # nothing to embed
    tokens = encoder.tokenize(tf.constant(TEXTS))["ngram_ids"].numpy()
    assert tokens.shape == (len(TEXTS), 16) and tokens.dtype == np.int32 and tokens[1].max() == 0
    np.testing.assert_allclose(encoder(encoder.tokenize(tf.constant(TEXTS))).numpy(), embeddings, rtol=1e-6)
    np.testing.assert_allclose(embeddings[5], encoder(tf.constant(["abc abc"])).numpy()[0], rtol=1e-6)  # NFKC, case
    assert encoder.compute_output_shape((None,)) == (None, 8)


def test_adapt_sets_rare_ngrams_above_common_ones():
    encoder = tiny()
    encoder.adapt(["我们的天", "我们的地", "我们的海", "稀"])
    weights = tf.nn.softplus(encoder.weights_per_bucket.embeddings).numpy()[:, 0]
    ids = {text: encoder.ngram_ids(tf.constant([text])).to_list()[0][0] for text in ("我", "稀")}
    np.testing.assert_allclose(weights[ids["我"]], np.log(5 / 4) + 1, rtol=1e-5)
    np.testing.assert_allclose(weights[ids["稀"]], np.log(5 / 2) + 1, rtol=1e-5)


def test_ngram_dropout_is_active_only_in_training():
    encoder = tiny(dropout=0.5)
    texts = tf.constant(["我爱北京天安门"] * 2)
    train = encoder(texts, training=True).numpy()
    assert not np.allclose(train[0], train[1])
    np.testing.assert_array_equal(encoder(texts).numpy()[0], encoder(texts).numpy()[1])


def test_keras_round_trip_and_saved_model_give_the_same_embeddings(tmp_path):
    encoder = tiny()
    encoder.adapt(TEXTS)
    expected = encoder(tf.constant(TEXTS)).numpy()
    encoder.save(tmp_path / "encoder.keras")
    restored = keras.saving.load_model(tmp_path / "encoder.keras")
    assert isinstance(restored, NgramEncoder) and restored.orders == (1, 2)
    np.testing.assert_array_equal(restored(tf.constant(TEXTS)).numpy(), expected)
    export_encoder(encoder, tmp_path / "text", TEXT_INPUT)
    serve = tf.saved_model.load(str(tmp_path / "text")).signatures["serving_default"]
    exported = serve(texts=tf.constant(TEXTS[2:]))["embedding"].numpy()
    np.testing.assert_allclose(exported, tf.math.l2_normalize(expected[2:], axis=-1).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        serve(texts=tf.constant([b"\xff\xfe"]))
