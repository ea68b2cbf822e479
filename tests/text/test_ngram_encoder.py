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


def sublinear_counts(grams):
    """``{bucket: 1 + log(count)}`` of a text's bucket ids."""
    buckets, counts = np.unique(grams, return_counts=True)
    return dict(zip(buckets, 1 + np.log(counts)))


def test_lexical_channel_is_a_count_sketch_of_the_ngram_weights_beside_the_dense_mean():
    encoder = tiny(max_ngrams=64, lexical_dim=32, lexical_weight=0.3)
    rng = np.random.default_rng(0)
    encoder.lexical_weights_per_bucket.embeddings.assign(rng.normal(size=(513, 1)).astype("float32"))
    texts = ["今天天气好", "天气好天气好", ""]
    ids = encoder.ngram_ids(tf.constant(texts)).to_list()
    weights = np.log1p(np.exp(encoder.lexical_weights_per_bucket.embeddings.numpy()[:, 0]))  # softplus
    sketches = np.zeros((3, 32))
    for row, grams in enumerate(ids):
        for gram, term_frequency in sublinear_counts(grams).items():  # "天气好" twice: 1 + log 2 each
            sketches[row, gram % 32] += (1 - 2 * (gram // 32 % 2)) * weights[gram] * term_frequency
    outputs = encoder(tf.constant(texts)).numpy()
    assert outputs.shape == (3, 8 + 32) and encoder.compute_output_shape((None,)) == (None, 40)
    np.testing.assert_allclose(
        outputs[:2, 8:],
        0.3**0.5 * sketches[:2] / np.linalg.norm(sketches[:2], axis=1, keepdims=True),
        rtol=1e-5,
        atol=1e-6,
    )
    dense = tiny(max_ngrams=64)(tf.constant(texts)).numpy()  # same seed: the same dense table
    np.testing.assert_allclose(
        outputs[:2, :8], 0.7**0.5 * dense[:2] / np.linalg.norm(dense[:2], axis=1, keepdims=True), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(np.linalg.norm(outputs[:2], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(outputs[2], 0.0)  # nothing to embed


def test_untrained_lexical_cosine_is_the_tfidf_cosine_when_no_buckets_collide():
    encoder = tiny(max_ngrams=64, lexical_dim=1024, lexical_weight=1.0)  # ≥ 513 buckets: one slot each
    corpus = ["今天天气好", "明天天气不好天气不好", "我们去北京", "北京今天下雨"]
    encoder.adapt(corpus)
    ids = encoder.ngram_ids(tf.constant(corpus)).to_list()
    idf = np.log1p(np.exp(encoder.weights_per_bucket.embeddings.numpy()[:, 0]))
    tfidf = np.zeros((4, 513))
    for row, grams in enumerate(ids):
        for gram, term_frequency in sublinear_counts(grams).items():
            tfidf[row, gram] = idf[gram] * term_frequency
    tfidf /= np.linalg.norm(tfidf, axis=1, keepdims=True)
    outputs = encoder(tf.constant(corpus)).numpy()
    np.testing.assert_allclose(outputs @ outputs.T, tfidf @ tfidf.T, rtol=1e-5, atol=1e-6)


def test_ngrams_dropped_in_training_leave_the_lexical_channel():
    encoder = tiny(lexical_dim=32, lexical_weight=1.0, dropout=1.0)
    outputs = encoder(tf.constant(["天气好天气好"]), training=True).numpy()
    np.testing.assert_array_equal(outputs, 0.0)  # every occurrence dropped: no term frequency, no NaN


def test_lexical_options_are_checked():
    with pytest.raises(ValueError, match="lexical_dim must be ≥ 0 and lexical_weight in"):
        tiny(lexical_dim=-1)
    with pytest.raises(ValueError, match="lexical_dim must be ≥ 0 and lexical_weight in"):
        tiny(lexical_dim=8, lexical_weight=1.5)


def test_ngram_dropout_is_active_only_in_training():
    encoder = tiny(dropout=0.5)
    texts = tf.constant(["我爱北京天安门"] * 2)
    train = encoder(texts, training=True).numpy()
    assert not np.allclose(train[0], train[1])
    np.testing.assert_array_equal(encoder(texts).numpy()[0], encoder(texts).numpy()[1])


@pytest.mark.parametrize("lexical_dim", [0, 16])
def test_keras_round_trip_and_saved_model_give_the_same_embeddings(tmp_path, lexical_dim):
    encoder = tiny(lexical_dim=lexical_dim)
    encoder.adapt(TEXTS)
    expected = encoder(tf.constant(TEXTS)).numpy()
    encoder.save(tmp_path / "encoder.keras")
    restored = keras.saving.load_model(tmp_path / "encoder.keras")
    assert isinstance(restored, NgramEncoder) and restored.orders == (1, 2) and restored.lexical_dim == lexical_dim
    np.testing.assert_array_equal(restored(tf.constant(TEXTS)).numpy(), expected)
    export_encoder(encoder, tmp_path / "text", TEXT_INPUT)
    serve = tf.saved_model.load(str(tmp_path / "text")).signatures["serving_default"]
    exported = serve(texts=tf.constant(TEXTS[2:]))["embedding"].numpy()
    np.testing.assert_allclose(exported, tf.math.l2_normalize(expected[2:], axis=-1).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        serve(texts=tf.constant([b"\xff\xfe"]))
