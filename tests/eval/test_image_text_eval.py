"""Image–text evaluation (recall@k, median rank, zero-shot) vs literal NumPy, and the CLIP/WenLan recipe."""

import json

import numpy as np
import pytest
from reference import normalise
from text_helpers import require

from tfcl.data.images import picture_text_pairs
from tfcl.eval.image_text import PROMPT_TEMPLATES_ZH, class_embeddings, retrieval_metrics, zero_shot_accuracy
from tfcl.recipes.image_text import pair_ids_of, train_image_text
from tfcl.registry import get_recipe
from tfcl.text.tokenizer import BERT_SPECIAL_TOKENS, WEIBO_TOKENS


def literal_ranks(similarities, gold):
    """For each query: 1 + the number of wrong candidates scored at least as high as its best right one."""
    ranks = []
    for row, answers in zip(similarities, gold):
        best = max(score for score, right in zip(row, answers) if right)
        ranks.append(1 + sum(1 for score, right in zip(row, answers) if not right and score >= best))
    return np.array(ranks)


def test_recall_and_median_rank_match_a_literal_computation():
    rng = np.random.default_rng(0)
    images, texts = normalise(rng.normal(size=(30, 4))), normalise(rng.normal(size=(30, 4)))
    texts[:10] = normalise(images[:10] + 0.1 * rng.normal(size=(10, 4)))  # a third of the pairs close
    gold = np.eye(30, dtype=bool)
    gold[3, 4] = gold[4, 3] = True  # two pairs with the same text: either text is right for either image
    metrics = retrieval_metrics(images, texts, gold)
    similarities = images @ texts.T
    for direction, scores, answers in (("i2t", similarities, gold), ("t2i", similarities.T, gold.T)):
        ranks = literal_ranks(scores, answers)
        for k in (1, 5, 10):
            assert metrics[f"{direction}_recall@{k}"] == pytest.approx(np.mean(ranks <= k))
        assert metrics[f"{direction}_median_rank"] == np.median(ranks)
    assert metrics["pairs"] == 30 and metrics["i2t_recall@1"] >= 10 / 30
    same = retrieval_metrics(images, images)  # identical towers: every pair first
    assert same["i2t_recall@1"] == same["t2i_recall@1"] == 1.0 and same["t2i_median_rank"] == 1.0
    constant = retrieval_metrics(np.ones((5, 2)) / np.sqrt(2), np.ones((5, 2)) / np.sqrt(2))
    assert constant["i2t_recall@1"] == 0.0 and constant["i2t_median_rank"] == 5.0  # ties count against


def test_zero_shot_classes_are_template_means_and_accuracy_is_nearest_class():
    rng = np.random.default_rng(1)
    table = {}

    def embed(prompts):  # a fixed random unit vector per prompt
        return np.array([table.setdefault(p, normalise(rng.normal(size=(1, 6)))[0]) for p in prompts])

    names = ["猫", "狗", "花"]
    classes = class_embeddings(embed, names)
    for c, name in enumerate(names):
        mean = np.mean([table[template.format(name)] for template in PROMPT_TEMPLATES_ZH], axis=0)
        np.testing.assert_allclose(classes[c], mean / np.linalg.norm(mean), rtol=1e-6)
    assert "一张猫的图片" in table
    images = normalise(rng.normal(size=(40, 6)))
    labels = rng.integers(0, 3, 40)
    literal = np.mean([np.argmax([image @ c for c in classes]) == label for image, label in zip(images, labels)])
    assert zero_shot_accuracy(images, classes, labels) == pytest.approx(literal)
    assert zero_shot_accuracy(classes, classes, [0, 1, 2]) == 1.0


def test_emoji_and_tux_paint_pairs_have_chinese_text_and_a_stable_held_out_split():
    pairs = require(picture_text_pairs, 16)
    assert len(pairs["text"]) == 2624 and (pairs["source"] == "emoji").sum() == 1911
    assert pairs["image"].shape == (2624, 16, 16, 3) and pairs["image"].dtype == np.uint8
    assert pairs["held_out"].sum() == 263 and all(pairs["text"])
    assert set(pairs["category"][pairs["category_zh"] == ""]) == {"Component"}  # the skin-tone swatches
    texts = {path.rsplit("/", 1)[-1]: text for path, text in zip(pairs["path"], pairs["text"])}
    assert texts["1f600.png"] == "嘿嘿：笑脸，脸，高兴"  # emoji: label：tags


def test_pair_ids_mark_equal_texts():
    np.testing.assert_array_equal(pair_ids_of(["猫", "狗", "猫"]), [1, 0, 1])


def synthetic_pairs(n=48, size=16, seed=0):
    """Coloured squares with their colour words; every fourth held out. Two sources, each with categories."""
    rng = np.random.default_rng(seed)
    colours = {"红色": (230, 30, 30), "绿色": (30, 200, 30), "蓝色": (30, 30, 230), "黄色": (240, 220, 20)}
    names = list(colours)
    rows = [names[i % 4] for i in range(n)]
    images = np.stack([np.clip(np.array(colours[c]) + rng.normal(0, 10, (size, size, 3)), 0, 255) for c in rows])
    return {
        "image": images.astype(np.uint8),
        "text": np.array([f"一块{c}的方块{i % 3}" for i, c in enumerate(rows)]),
        "source": np.array(["emoji" if i // 4 % 2 else "tuxpaint" for i in range(n)]),
        "category_zh": np.array([c if i % 5 else "" for i, c in enumerate(rows)]),
        "held_out": np.arange(n) % 4 == 0,
    }


@pytest.mark.parametrize("method", ["clip", pytest.param("wenlan", marks=pytest.mark.slow)])
def test_recipe_trains_saves_and_evaluates(method, tmp_path):
    pairs = synthetic_pairs()
    vocabulary = [
        *BERT_SPECIAL_TOKENS,
        *WEIBO_TOKENS,
        *sorted(set("".join(pairs["text"]) + "".join(PROMPT_TEMPLATES_ZH))),
    ]
    tiny = dict(
        image_size=16, text_length=12, num_layers=1, hidden_dim=16, intermediate_dim=32, projection_dim=8, queue_size=16
    )
    model, history = train_image_text(
        get_recipe(method),
        pairs,
        vocabulary,
        tmp_path / "run",
        epochs=2,
        batch_size=8,
        steps_per_epoch=3,
        verbose=0,
        **tiny,
    )
    assert model.optimizer.iterations.numpy() == 6 and np.all(np.isfinite(history.history["loss"]))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["pairs"] == 12 and set(metrics) >= {
        "i2t_recall@1",
        "t2i_median_rank",
        "zero_shot_emoji",
        "zero_shot_tuxpaint",
    }
    assert (tmp_path / "run" / "model.keras").exists()


def test_cli_trains_clip_and_exports_the_picture_model(tmp_path):
    """``tfcl train clip`` on the emoji / Tux Paint pairs: checkpoints, metrics, and a SavedModel whose
    ``posts_for_picture`` finds a picture's own text among all pairs' texts."""
    import subprocess
    import sys

    import tensorflow as tf

    out = tmp_path / "clip"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfcl.cli",
            "train",
            "clip",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "16",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pairs"] == int(picture_text_pairs(16)["held_out"].sum())
    served = tf.saved_model.load(str(out / "picture_model"))
    assert {"pictures_for_post", "posts_for_picture", "embed_post", "embed_picture"} <= set(served.signatures)
    pairs = picture_text_pairs(16)
    answer = served.signatures["posts_for_picture"](pictures=tf.constant([open(pairs["path"][0], "rb").read()]))
    assert answer["post_ids"].shape == (1, 10) and np.all(np.diff(answer["scores"].numpy()) <= 1e-6)
    assert answer["post_ids"].numpy()[0][0].decode().split(":")[0] in {"emoji", "tuxpaint"}
