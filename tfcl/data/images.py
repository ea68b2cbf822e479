"""Image data sets: Fashion-MNIST and MNIST 5k (grey, labelled), Noto emoji and Tux Paint stamps (pictures with
Chinese and English text).

``*_arrays`` and ``*_records`` return NumPy arrays / Python dicts; ``load_*`` return ``tf.data`` pipelines.
Emoji and stamps are RGBA pictures: their pipelines composite them over white and yield RGB ``uint8`` images of
``image_size`` × ``image_size`` (aspect ratio kept, padded with white).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfcl.data.cache import dataset_dir
from tfcl.data.fetch import INDEX_FILE, read_index
from tfcl.encoders.pictures import decode_picture

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_FILE_PREFIXES = {"train": "train", "test": "t10k"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in a gzipped idx-ubyte file (the MNIST format)."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    rank = data[3]
    shape = np.frombuffer(data, ">u4", count=rank, offset=4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def fashion_mnist_arrays(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28, 1], labels int64 [N] in 0..9) of the ``"train"`` (60,000) or ``"test"`` (10,000)
    split."""
    if split not in FASHION_MNIST_FILE_PREFIXES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = dataset_dir("fashion_mnist")
    prefix = FASHION_MNIST_FILE_PREFIXES[split]
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    return images[..., np.newaxis], labels.astype(np.int64)


def load_fashion_mnist(split: str = "train") -> tf.data.Dataset:
    """A dataset of (image uint8 [28, 28, 1], label int64) pairs; see :func:`fashion_mnist_arrays`."""
    return tf.data.Dataset.from_tensor_slices(fashion_mnist_arrays(split))


def mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [5000, 28, 28, 1], labels int64 [5000]): 500 MNIST digits of each class."""
    table = np.loadtxt(dataset_dir("mnist_5k") / "mnist_5k.csv.gz", delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28, 1), table[:, -1].astype(np.int64)


def load_mnist_5k() -> tf.data.Dataset:
    """A dataset of (image uint8 [28, 28, 1], label int64) pairs; see :func:`mnist_5k_arrays`."""
    return tf.data.Dataset.from_tensor_slices(mnist_5k_arrays())


def emoji_records() -> list[dict[str, Any]]:
    """The 1,911 emoji as dicts: code, emoji, image (path in the data set folder), label_zh, label_en,
    tags_zh, tags_en (lists), category (10, among them 'Component': the 5 skin-tone swatches), subcategory (99)."""
    return read_index(dataset_dir("emoji") / INDEX_FILE)


def tuxpaint_records() -> list[dict[str, Any]]:
    """The 950 captioned Tux Paint stamps as dicts: image (path of a PNG, or an SVG where the stamp has no PNG),
    caption_en, caption_zh ('' for the 177 stamps without a Chinese caption), category (16)."""
    return read_index(dataset_dir("tuxpaint") / INDEX_FILE)


def decode_over_white(path: str | tf.Tensor, image_size: int) -> tf.Tensor:
    """Read a JPEG or PNG, composite it over white and fit it into ``image_size`` × ``image_size``: RGB uint8
    (:func:`tfcl.encoders.decode_picture`, the decoder inside exported image towers)."""
    return decode_picture(tf.io.read_file(path), image_size)


def decode_files(paths: Sequence[str] | np.ndarray, image_size: int) -> np.ndarray:
    """uint8 ``[len(paths), image_size, image_size, 3]``: :func:`decode_over_white` of each file."""
    decoded = tf.data.Dataset.from_tensor_slices(np.asarray(paths, dtype=str)).map(
        lambda path: decode_over_white(path, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    return np.stack(list(decoded.as_numpy_iterator()))


def as_text(value: str | list[str]) -> str:
    return ", ".join(value) if isinstance(value, list) else value


def picture_dataset(name: str, records: Sequence[dict[str, Any]], image_size: int) -> tf.data.Dataset:
    """A dataset of dicts holding the records' fields and the decoded ``image``.

    List fields (tags) are joined with ", "; each ``category`` / ``subcategory`` also gets an int64 ``*_id``,
    its index among the sorted names.
    """
    folder = dataset_dir(name)
    columns = {key: [as_text(record[key]) for record in records] for key in records[0]}
    columns["image"] = [str(folder / record["image"]) for record in records]
    for key in ("category", "subcategory"):
        if key in columns:
            ids = {value: index for index, value in enumerate(sorted(set(columns[key])))}
            columns[f"{key}_id"] = np.array([ids[value] for value in columns[key]], np.int64)
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    return dataset.map(
        lambda row: {**row, "image": decode_over_white(row["image"], image_size)}, num_parallel_calls=tf.data.AUTOTUNE
    )


def load_emoji(image_size: int = 64) -> tf.data.Dataset:
    """The 1,911 Noto emoji (64×64 upstream) with their labels and tags; see :func:`emoji_records`."""
    return picture_dataset("emoji", emoji_records(), image_size)


def load_tuxpaint(image_size: int = 64) -> tf.data.Dataset:
    """The 785 Tux Paint stamps that have a PNG picture, with captions and category.

    The 165 stamps drawn only as SVG are left out (no SVG rasteriser in the stack); their captions are in
    :func:`tuxpaint_records`.
    """
    records = [record for record in tuxpaint_records() if record["image"].endswith(".png")]
    return picture_dataset("tuxpaint", records, image_size)


def image_splits(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train images, labels), (test images, labels)) of a labelled image data set: Fashion-MNIST's own split,
    or MNIST-5k with every fifth image held out (4,000 / 1,000)."""
    if name == "fashion_mnist":
        return fashion_mnist_arrays("train"), fashion_mnist_arrays("test")
    if name == "mnist_5k":
        images, labels = mnist_5k_arrays()
        held_out = np.arange(len(images)) % 5 == 0
        return (images[~held_out], labels[~held_out]), (images[held_out], labels[held_out])
    raise ValueError(f"Unknown image data set {name!r}; choose fashion_mnist or mnist_5k.")


# Chinese names of the picture categories, for zero-shot prompts ("一张{}的图片"). Emoji's 'Component' (the skin-tone
# swatches) is no class of things and has none.
EMOJI_CATEGORIES_ZH = {
    "Smileys & Emotion": "笑脸和情感",
    "People & Body": "人物和身体",
    "Animals & Nature": "动物和自然",
    "Food & Drink": "食物和饮料",
    "Travel & Places": "旅行和地点",
    "Activities": "活动",
    "Objects": "物品",
    "Symbols": "符号",
    "Flags": "旗帜",
}
TUXPAINT_CATEGORIES_ZH = {
    "animals": "动物",
    "clothes": "衣服",
    "food": "食物",
    "hobbies": "爱好",
    "household": "家居用品",
    "medical": "医疗",
    "military": "军事",
    "naturalforces": "自然现象",
    "people": "人物",
    "plants": "植物",
    "seasonal": "节日",
    "space": "太空",
    "sports": "运动",
    "symbols": "符号",
    "town": "城镇",
    "vehicles": "交通工具",
}


def picture_text_pairs(image_size: int = 64, held_out_every: int = 10) -> dict[str, np.ndarray]:
    """Emoji and Tux Paint pictures paired with their Chinese text, for image–text training and evaluation.

    Emoji: the Chinese label and tags (``"猫脸：猫，脸"``); Tux Paint: the Chinese caption of each PNG stamp that
    has one. Returns a dict of NumPy arrays, one row per pair: ``image`` uint8 ``[N, image_size, image_size, 3]``
    (:func:`decode_over_white`), ``path`` (the picture file), ``text``, ``source`` (``emoji`` / ``tuxpaint``),
    ``category`` and ``category_zh`` ('' where the category has no Chinese name), and ``held_out``: a stable
    split, a picture is held out when the CRC-32 of ``source:image`` is 0 modulo ``held_out_every``.
    """
    rows = [
        (
            "emoji",
            record["image"],
            f"{record['label_zh']}：{'，'.join(record['tags_zh'])}",
            record["category"],
            EMOJI_CATEGORIES_ZH.get(record["category"], ""),
        )
        for record in emoji_records()
    ]
    rows += [
        (
            "tuxpaint",
            record["image"],
            record["caption_zh"],
            record["category"],
            TUXPAINT_CATEGORIES_ZH.get(record["category"], ""),
        )
        for record in tuxpaint_records()
        if record["image"].endswith(".png") and record["caption_zh"]
    ]
    source, image, text, category, category_zh = (np.array(column) for column in zip(*rows))
    paths = np.array([str(dataset_dir(name) / path) for name, path in zip(source, image)])
    held_out = np.array(
        [zlib.crc32(f"{name}:{path}".encode()) % held_out_every == 0 for name, path in zip(source, image)]
    )
    return {
        "image": decode_files(paths, image_size),
        "path": paths,
        "text": text,
        "source": source,
        "category": category,
        "category_zh": category_zh,
        "held_out": held_out,
    }
