"""``--text-preset``: text towers that start from a keras-hub BERT preset folder, laid out as a downloaded one."""

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from text_helpers import POSTS, TOPICS

from tfcl.data import weibo
from tfcl.recipes.base import TrainSettings
from tfcl.recipes.cdtom import build_cdtom
from tfcl.registry import RECIPES, clip_model, wenlan_model
from tfcl.text import TextEncoder
from tfcl.text.tokenizer import BERT_SPECIAL_TOKENS

CHARACTERS = sorted(set("".join([document for document, _ in POSTS] + TOPICS + ["看图片"])))
UNUSED = [f"[unused{i}]" for i in range(4)]


def save_bert_preset(path, vocabulary):
    """A 1-layer keras-hub BERT and its tokenizer saved with ``save_to_preset``, as ``bert_base_zh`` is laid out."""
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=64,
    )
    backbone.save_to_preset(str(path))
    keras_hub.models.BertTokenizer(vocabulary, lowercase=True).save_to_preset(str(path))
    return backbone


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A preset whose vocabulary lacks the Weibo reserved tokens but has [unusedN] slots; and its backbone."""
    path = tmp_path_factory.mktemp("bert_tiny_zh")
    vocabulary = [BERT_SPECIAL_TOKENS[0], *UNUSED, *BERT_SPECIAL_TOKENS[1:], *CHARACTERS]
    return str(path), save_bert_preset(path, vocabulary)


def assert_same_weights(backbone, reference):
    for weight, expected in zip(backbone.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(weight.numpy(), expected.numpy(), err_msg=weight.path)


def test_from_preset_keeps_the_weights_and_puts_weibo_tokens_in_unused_slots(preset):
    path, backbone = preset
    encoder = TextEncoder.from_preset(path, sequence_length=16)
    assert_same_weights(encoder.backbone, backbone)
    vocabulary = encoder.tokenizer.get_vocabulary()
    assert vocabulary[1:4] == ["[URL]", "[USER]", "[EMOTICON]"] and vocabulary[4:] == [
        "[unused3]",
        *BERT_SPECIAL_TOKENS[1:],
        *CHARACTERS,
    ]
    tokens = encoder.tokenize(["看图片 http://t.cn/abc @某人"])["token_ids"][0].numpy()
    assert list(tokens[:7]) == [
        vocabulary.index(token) for token in ("[CLS]", "看", "图", "片", "[URL]", "[USER]", "[SEP]")
    ]
    reference = backbone(encoder.tokenize(["看图片"]))["sequence_output"]
    np.testing.assert_allclose(encoder.backbone(encoder.tokenize(["看图片"]))["sequence_output"], reference)


def test_from_preset_refuses_a_sequence_longer_than_its_positions(preset):
    with pytest.raises(ValueError, match="longer than the preset"):
        TextEncoder.from_preset(preset[0], sequence_length=65)


def test_a_preset_vocabulary_without_room_for_the_weibo_tokens_fails_clearly(tmp_path):
    save_bert_preset(tmp_path, [*BERT_SPECIAL_TOKENS, *CHARACTERS])
    with pytest.raises(ValueError, match=r"lacks \['\[URL\]', '\[USER\]', '\[EMOTICON\]'\]"):
        TextEncoder.from_preset(str(tmp_path))


@pytest.mark.parametrize("shared", [False, True])
def test_cdtom_towers_start_from_the_preset(preset, shared):
    path, backbone = preset
    model = build_cdtom(None, text_preset=path, shared_towers=shared, document_length=16, topic_length=8)
    towers = [model.encoder] if shared else [model.encoder, model.topic_tower]
    for tower in towers:
        assert_same_weights(tower.backbone, backbone)
    assert len({id(tower.backbone) for tower in towers}) == len(towers)


@pytest.mark.parametrize("build", [clip_model, wenlan_model])
def test_image_text_text_towers_start_from_the_preset(preset, build):
    path, backbone = preset
    model = build(None, text_preset=path, image_size=32, text_length=16, projection_dim=8, queue_size=8)
    assert_same_weights(model.text_encoder.backbone, backbone)


def test_tfcl_train_cdtom_with_a_text_preset_trains_the_preset_tower(preset, tmp_path):
    from tfcl.data.weibo_ingest import TOPIC_VOCAB_FILE

    path, backbone = preset
    (tmp_path / "weibo" / "train").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(tmp_path / "weibo" / "train" / "posts.tfrecord.gz"), options="GZIP") as writer:
        for index, (document, topics) in enumerate(POSTS * 2):
            post = weibo.WeiboPost(id=str(index), text=document, document=document, topics=topics)
            writer.write(weibo.to_example(post).SerializeToString())
    (tmp_path / "weibo" / TOPIC_VOCAB_FILE).write_text("".join(f"{topic}\t2\n" for topic in TOPICS), "utf-8")
    settings = TrainSettings(
        out_dir=tmp_path / "run",
        epochs=1,
        steps_per_epoch=1,
        batch_size=8,
        weibo=str(tmp_path / "weibo"),
        text_preset=path,
        verbose=0,
    )
    trained = RECIPES["cdtom"].train(settings)
    tower = trained.model.encoder
    expected = TextEncoder.from_preset(path, sequence_length=16).tokenizer.get_vocabulary()
    assert tower.tokenizer.get_vocabulary() == expected
    assert tower.output_dim == 16 and len(tower.backbone.transformer_layers) == 1
    assert int(trained.model.optimizer.iterations.numpy()) == 1
