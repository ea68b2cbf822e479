"""W-CLIP: Weibo posts (generated sample corpus, Weibo's JSON-lines schema) and their pictures, both negatives."""

import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from text_helpers import require

from tfcl.apps.pictures import export_wclip
from tfcl.data import weibo
from tfcl.data.post_pictures import (
    NOT_FOUND,
    UNDECODABLE,
    NoPicturePairs,
    picture_path,
    post_picture_pairs,
    post_text,
)
from tfcl.data.weibo_sample import write_sample
from tfcl.eval.image_text import chance_metrics
from tfcl.eval.image_text import evaluate_picture_model as evaluate_wclip
from tfcl.models import CLIP, WenLan
from tfcl.recipes.wclip import DEAD_LETTERS_FILE, METRICS_FILE, REPORT_FILE, build_wclip, train_wclip, wclip_batches
from tfcl.registry import wclip_recipe
from tfcl.text.tokenizer import BERT_SPECIAL_TOKENS, WEIBO_TOKENS


def test_post_text_keeps_hashtag_names_and_the_normalised_document():
    post = weibo.parse_post(
        {"id": "1", "text": "#春日赏花# 樱花开了 @小鹿同学 http://t.cn/A6abc [哈哈]", "pics": ["a.png"]}
    )
    assert post_text(post) == "春日赏花 樱花开了 @user [哈哈]"


def png(rgb, size=(12, 20)):
    return tf.io.encode_png(np.full((*size, 3), rgb, np.uint8)).numpy()


def test_picture_references_resolve_to_local_files_only(tmp_path):
    (tmp_path / "a.png").write_bytes(png((0, 0, 0)))
    assert picture_path("a.png", tmp_path) == str(tmp_path / "a.png")
    assert picture_path("https://wx1.sinaimg.cn/large/abc.jpg", tmp_path) is None
    assert picture_path("b.png", tmp_path) is None
    assert picture_path(".", tmp_path) is None  # a folder is no picture
    posts = [
        weibo.WeiboPost(id="1", text="t", document="猫", topics=("萌宠",), pictures=("a.png", "gone.jpg")),
        weibo.WeiboPost(id="2", text="t", document="狗", pictures=("a.png",)),
    ]
    pairs = post_picture_pairs(posts, tmp_path)
    assert list(pairs["text"]) == ["萌宠 猫", "狗"]
    assert pairs["set_aside"] == [{"post_id": "1", "ref": "gone.jpg", "reason": NOT_FOUND}]
    np.testing.assert_array_equal(pairs["pair_ids"], [[0, 2], [1, 2]])  # one picture of two posts: shared id
    nothing = post_picture_pairs(posts[:1], tmp_path / "elsewhere")
    assert nothing["pair_ids"].shape == (0, 2) and len(nothing["set_aside"]) == 2
    with pytest.raises(ValueError, match="negatives"):
        wclip_recipe("both")
    with pytest.raises(ValueError, match="image_size must be at least 16"):  # pictures are checked at 16 pixels
        build_wclip(wclip_recipe("in_batch"), ["[PAD]"], image_size=8)


COLOURS = {
    "red.png": (230, 30, 30),
    "green.png": (30, 200, 30),
    "blue.png": (30, 30, 230),
    "yellow.png": (240, 220, 20),
}
BAD_PICTURES = {
    "broken.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
    "cut.png": png((1, 2, 3))[:40],
    "notes.txt": "不是图片".encode(),
}
UNRESOLVABLE = ("missing.png", "https://wx1.sinaimg.cn/large/006abc.jpg")
TEXTS = {
    "red.png": "红色 苹果 好吃",
    "green.png": "绿色 树叶 春天",
    "blue.png": "蓝色 大海 旅行",
    "yellow.png": "黄色 香蕉 水果",
}


def colour_posts(count, first_id, extra_refs=()):
    """Posts about one colour each, with that colour's picture (the first ones also with ``extra_refs``)."""
    names = list(COLOURS)
    return [
        weibo.WeiboPost(
            id=str(first_id + index),
            text="t",
            document=f"{TEXTS[names[index % 4]]} 第{index}天",
            topics=(names[index % 4][:-4],),
            pictures=(names[index % 4], *extra_refs[index : index + 1]),
        )
        for index in range(count)
    ]


@pytest.fixture(scope="module")
def picture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    for name, rgb in COLOURS.items():
        (root / name).write_bytes(png(rgb))
    for name, data in BAD_PICTURES.items():
        (root / name).write_bytes(data)
    return root


TINY = dict(
    image_size=16,
    text_length=24,
    num_layers=1,
    hidden_dim=16,
    intermediate_dim=32,
    projection_dim=8,
    vocabulary_size=200,
)


@pytest.fixture(scope="module")
def trained(picture_root, tmp_path_factory):
    """A tiny W-CLIP trained one epoch on colour posts whose train split also points at bad pictures."""
    train = colour_posts(16, 100, [*BAD_PICTURES, *UNRESOLVABLE])
    held_out = colour_posts(6, 900, ["missing.png"])
    out_dir = tmp_path_factory.mktemp("wclip")
    model, history = train_wclip(
        wclip_recipe("in_batch"),
        train,
        held_out,
        out_dir,
        picture_root=str(picture_root),
        epochs=1,
        batch_size=8,
        verbose=0,
        **TINY,
    )
    return {"model": model, "history": history, "out_dir": out_dir, "train": train, "held_out": held_out}


def test_bad_pictures_are_set_aside_with_their_reason_and_counted(trained):
    letters = [json.loads(line) for line in (trained["out_dir"] / DEAD_LETTERS_FILE).read_text().splitlines()]
    expected = [
        {
            "split": "train",
            "post_id": str(100 + index),
            "ref": ref,
            "reason": UNDECODABLE if ref in BAD_PICTURES else NOT_FOUND,
        }
        for index, ref in enumerate([*BAD_PICTURES, *UNRESOLVABLE])
    ]
    assert letters == expected + [{"split": "eval", "post_id": "900", "ref": "missing.png", "reason": NOT_FOUND}]
    report = json.loads((trained["out_dir"] / REPORT_FILE).read_text())
    assert report["train"] == {
        "posts": 16,
        "references": 21,
        "pairs": 16,
        "pictures": 4,
        "set_aside": {NOT_FOUND: 2, UNDECODABLE: 3},
    }
    assert report["eval"] == {"posts": 6, "references": 7, "pairs": 6, "pictures": 4, "set_aside": {NOT_FOUND: 1}}
    assert np.isfinite(trained["history"].history["loss"]).all()
    assert {"model.keras", "history.json", METRICS_FILE, "logs"} <= {path.name for path in trained["out_dir"].iterdir()}


def test_no_usable_picture_fails_clearly_after_writing_the_dead_letters(picture_root, tmp_path):
    posts = [weibo.WeiboPost(id="1", text="t", document="猫", pictures=("broken.jpg", "missing.png"))]
    with pytest.raises(NoPicturePairs, match="no train post has a usable picture"):
        train_wclip(wclip_recipe("in_batch"), posts, [], tmp_path, picture_root=str(picture_root), **TINY)
    assert len((tmp_path / DEAD_LETTERS_FILE).read_text().splitlines()) == 2
    assert json.loads((tmp_path / REPORT_FILE).read_text())["train"]["set_aside"] == {NOT_FOUND: 1, UNDECODABLE: 1}


def literal_recall(scores, gold, k):
    """Share of queries (rows) with a right answer among the k best (a tie with it counts against it)."""
    hits = []
    for row, answers in zip(scores, gold):
        best = max(score for score, right in zip(row, answers) if right)
        hits.append(sum(1 for score, right in zip(row, answers) if not right and score >= best) < k)
    return np.mean(hits)


def test_exported_model_is_evaluated_on_distinct_posts_and_pictures(trained, picture_root, tmp_path):
    model, held_out = trained["model"], trained["held_out"]
    path = export_wclip(model, trained["train"], str(tmp_path / "1"), str(picture_root), k=3)
    saved_model = tf.saved_model.load(path)
    answer = saved_model.signatures["posts_for_picture"](pictures=tf.constant([png((220, 40, 40))]))
    assert {post_id.decode() for post_id in answer["post_ids"].numpy()[0]} <= {post.id for post in trained["train"]}
    picture_ids = saved_model.signatures["pictures_for_post"](texts=tf.constant(["红色"]))["picture_ids"].numpy()
    assert {ref.decode() for ref in picture_ids[0]} <= set(COLOURS)  # bad pictures are not indexed

    metrics = evaluate_wclip(path, held_out, str(picture_root))
    texts = sorted({post_text(post) for post in held_out})  # 6 distinct texts, 4 distinct pictures
    pictures = sorted(str(picture_root / name) for name in COLOURS)
    image_embeddings = model.embed_images(tf.constant([open(file, "rb").read() for file in pictures])).numpy()
    text_embeddings = model.embed_texts(tf.constant(texts)).numpy()
    gold = np.array(
        [
            [
                any(
                    post_text(post) == text and picture_path(post.pictures[0], str(picture_root)) == file
                    for post in held_out
                )
                for text in texts
            ]
            for file in pictures
        ]
    )
    similarities = image_embeddings @ text_embeddings.T
    assert (metrics["pairs"], metrics["pictures"], metrics["texts"]) == (6, 4, 6)
    for k in (1, 5, 10):
        assert metrics[f"i2t_recall@{k}"] == pytest.approx(literal_recall(similarities, gold, k), abs=1e-6)
        assert metrics[f"t2i_recall@{k}"] == pytest.approx(literal_recall(similarities.T, gold.T, k), abs=1e-6)
    assert metrics["t2i_recall@5"] == 1.0  # 4 pictures: every post's own one is in its top 5


def test_chance_recall_is_the_expected_recall_of_a_random_ranking():
    chance = chance_metrics(np.eye(4, dtype=bool))
    assert chance["i2t_recall@1"] == chance["t2i_recall@1"] == 0.25 and chance["t2i_recall@5"] == 1.0
    gold = np.zeros((6, 2), bool)  # 6 pictures, 2 texts: text 0 goes with 2 of them, text 1 with 1
    gold[[0, 1], 0] = gold[2, 1] = True
    orders = list(itertools.permutations(range(6)))  # every ranking of the pictures, equally likely
    for k in (1, 2, 5):
        literal = np.mean([[answers[list(order[:k])].any() for answers in gold.T] for order in orders])
        assert chance_metrics(gold, ks=(k,))[f"t2i_recall@{k}"] == pytest.approx(literal)


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
    return build_wclip(
        wclip_recipe(negatives),
        vocabulary,
        image_size=16,
        text_length=24,
        num_layers=1,
        hidden_dim=16,
        intermediate_dim=32,
        projection_dim=8,
        queue_size=16,
    )


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
    history = model.fit(wclip_batches(sample_pairs, model, 8, shuffle_seed=0), steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    pictures = tf.constant([open(path, "rb").read() for path in sample_pairs["picture"][:2]])
    assert model.embed_images(pictures).shape == (2, 8)


def test_cli_trains_wclip_on_ingested_posts_and_exports_the_picture_model(tmp_path):
    """``tfcl train wenlan --weibo DIR``: W-CLIP with queued negatives on ingested posts, served pictures ↔ posts."""
    import argparse

    from tfcl.cli import train as train_cli
    from tfcl.data import weibo_ingest

    write_sample(tmp_path / "posts.jsonl", posts=120, seed=2)
    ingested = tmp_path / "ingested"
    weibo_ingest.run_ingestion([str(tmp_path / "posts.jsonl")], ingested, min_topic_count=3, num_shards=1)
    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers())
    out = tmp_path / "run"
    args = parser.parse_args(
        [
            "train",
            "wenlan",
            "--weibo",
            str(ingested),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "8",
        ]
    )
    args.run(args)
    assert isinstance(keras.saving.load_model(out / "model.keras"), WenLan)
    assert (out / "picture_dead_letters.jsonl").exists() and (out / "metrics.json").exists()
    served = tf.saved_model.load(str(out / "picture_model"))
    answer = served.signatures["pictures_for_post"](texts=tf.constant(["猫咪 晒太阳"]))
    assert answer["picture_ids"].numpy()[0][0].decode().split(":")[0] in {"emoji", "tuxpaint"}
