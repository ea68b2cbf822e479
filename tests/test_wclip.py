"""W-CLIP: Weibo posts (generated sample corpus, Weibo's JSON-lines schema) and their pictures, both negatives."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from text_helpers import require
from tfcl.data import weibo
from tfcl.data.weibo_sample import write_sample
from tfcl.models import CLIP, WenLan
from tfcl.recipes.wclip import build_wclip, picture_path, post_picture_pairs, post_text, wclip_batches
from tfcl.text.tokenizer import BERT_SPECIAL_TOKENS, WEIBO_TOKENS


def test_post_text_keeps_hashtag_names_and_the_normalised_document():
    post = weibo.parse_post(
        {"id": "1", "text": "#春日赏花# 樱花开了 @小鹿同学 http://t.cn/A6abc [哈哈]", "pics": ["a.png"]})
    assert post_text(post) == "春日赏花 樱花开了 @user [哈哈]"


def test_picture_references_resolve_to_local_files_only(tmp_path):
    (tmp_path / "a.png").write_bytes(tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)).numpy())
    assert picture_path("a.png", tmp_path) == str(tmp_path / "a.png")
    assert picture_path("https://wx1.sinaimg.cn/large/abc.jpg", tmp_path) is None
    assert picture_path("b.png", tmp_path) is None
    posts = [weibo.WeiboPost(id="1", text="t", document="猫", topics=("萌宠",), pictures=("a.png", "gone.jpg")),
             weibo.WeiboPost(id="2", text="t", document="狗", pictures=("a.png",))]
    pairs = post_picture_pairs(posts, tmp_path)
    assert list(pairs["text"]) == ["萌宠 猫", "狗"] and pairs["unresolved"] == 1
    np.testing.assert_array_equal(pairs["pair_ids"], [[0, 2], [1, 2]])  # one picture of two posts: shared id
    with pytest.raises(ValueError, match="no post has a local picture"):
        post_picture_pairs(posts[:1], tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="negatives"):
        build_wclip(["[PAD]"], negatives="both")


@pytest.fixture(scope="module")
def sample_pairs(tmp_path_factory):
    """The (post, picture) pairs of a 200-post generated sample in Weibo's JSON-lines schema."""
    path = tmp_path_factory.mktemp("weibo") / "sample.jsonl"
    write_sample(path, posts=200, seed=1)
    dead_letters = []
    posts = list(weibo.read_posts(path, dead_letters=dead_letters))
    assert dead_letters  # the sample's malformed lines were set aside
    return require(post_picture_pairs, posts)


def tiny_wclip(pairs, negatives):
    vocabulary = [*BERT_SPECIAL_TOKENS, *WEIBO_TOKENS, *sorted(set("".join(pairs["text"])))]
    return build_wclip(vocabulary, negatives, image_size=16, text_length=24, num_layers=1, hidden_dim=16,
                       intermediate_dim=32, projection_dim=8, queue_size=16)


def test_sample_posts_give_pairs_of_cleaned_text_and_local_pictures(sample_pairs):
    assert len(sample_pairs["text"]) >= 16
    assert not any("#" in text or "＃" in text or "http" in text for text in sample_pairs["text"])
    assert all(path.endswith(".png") for path in sample_pairs["picture"])


@pytest.mark.parametrize("negatives, method", [("in_batch", CLIP), ("queue", WenLan)])
def test_one_parameter_selects_in_batch_or_queued_negatives(sample_pairs, negatives, method):
    model = tiny_wclip(sample_pairs, negatives)
    assert type(model) is method
    images, tokens, pair_ids = next(iter(wclip_batches(sample_pairs, model, 8)))
    loss, (z_images, z_texts) = model.compute_contrastive_loss((images, tokens, pair_ids), training=False)
    assert np.isfinite(loss.numpy()) and z_images.shape == z_texts.shape == (8, 8)
    pictures = tf.constant([open(path, "rb").read() for path in sample_pairs["picture"][:8]])
    np.testing.assert_allclose(model.embed_images(pictures).numpy(), z_images.numpy(), atol=1e-5)  # files = batch


@pytest.mark.slow
def test_wclip_trains_on_weibo_posts_and_embeds_picture_files(sample_pairs):
    model = tiny_wclip(sample_pairs, "in_batch")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(wclip_batches(sample_pairs, model, 8, shuffle_seed=0), steps_per_epoch=2, epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    pictures = tf.constant([open(path, "rb").read() for path in sample_pairs["picture"][:2]])
    assert model.embed_images(pictures).shape == (2, 8)
