"""Image data sets: Fashion-MNIST and MNIST 5k (grey, labelled), Noto emoji and Tux Paint stamps (pictures with
Chinese and English text).

``*_arrays`` and ``*_records`` return NumPy arrays / Python dicts; ``load_*`` return ``tf.data`` pipelines.
Emoji and stamps are RGBA pictures: their pipelines composite them over white and yield RGB ``uint8`` images of
``image_size`` × ``image_size`` (aspect ratio kept, padded with white).
"""
import gzip

import numpy as np
import tensorflow as tf

from tfcl.data.cache import dataset_dir
from tfcl.data.fetch import INDEX_FILE, read_index

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_MNIST_FILE_PREFIXES = {"train": "train", "test": "t10k"}


def read_idx(path):
    """The array stored in a gzipped idx-ubyte file (the MNIST format)."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    rank = data[3]
    shape = np.frombuffer(data, ">u4", count=rank, offset=4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def fashion_mnist_arrays(split="train"):
    """(images uint8 [N, 28, 28, 1], labels int64 [N] in 0..9) of the ``"train"`` (60,000) or ``"test"`` (10,000)
    split."""
    if split not in FASHION_MNIST_FILE_PREFIXES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = dataset_dir("fashion_mnist")
    prefix = FASHION_MNIST_FILE_PREFIXES[split]
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    return images[..., np.newaxis], labels.astype(np.int64)


def load_fashion_mnist(split="train"):
    """A dataset of (image uint8 [28, 28, 1], label int64) pairs; see :func:`fashion_mnist_arrays`."""
    return tf.data.Dataset.from_tensor_slices(fashion_mnist_arrays(split))


def mnist_5k_arrays():
    """(images uint8 [5000, 28, 28, 1], labels int64 [5000]): 500 MNIST digits of each class."""
    table = np.loadtxt(dataset_dir("mnist_5k") / "mnist_5k.csv.gz", delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28, 1), table[:, -1].astype(np.int64)


def load_mnist_5k():
    """A dataset of (image uint8 [28, 28, 1], label int64) pairs; see :func:`mnist_5k_arrays`."""
    return tf.data.Dataset.from_tensor_slices(mnist_5k_arrays())


def emoji_records():
    """The 1,911 emoji as dicts: code, emoji, image (path in the data set folder), label_zh, label_en,
    tags_zh, tags_en (lists), category (10, among them 'Component': the 5 skin-tone swatches), subcategory (99)."""
    return read_index(dataset_dir("emoji") / INDEX_FILE)


def tuxpaint_records():
    """The 950 captioned Tux Paint stamps as dicts: image (path of a PNG, or an SVG where the stamp has no PNG),
    caption_en, caption_zh ('' for the 177 stamps without a Chinese caption), category (16)."""
    return read_index(dataset_dir("tuxpaint") / INDEX_FILE)


def decode_over_white(path, image_size):
    """Read a PNG, composite it over white and fit it into ``image_size`` × ``image_size``: RGB uint8."""
    rgba = tf.image.convert_image_dtype(tf.io.decode_png(tf.io.read_file(path), channels=4), tf.float32)
    alpha = rgba[..., 3:]
    premultiplied = tf.concat([rgba[..., :3] * alpha, alpha], axis=-1)
    resized = tf.image.resize_with_pad(premultiplied, image_size, image_size, antialias=True)
    rgb = resized[..., :3] + 1.0 - resized[..., 3:]
    return tf.image.convert_image_dtype(tf.clip_by_value(rgb, 0.0, 1.0), tf.uint8)


def as_text(value):
    return ", ".join(value) if isinstance(value, list) else value


def picture_dataset(name, records, image_size):
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
    return dataset.map(lambda row: {**row, "image": decode_over_white(row["image"], image_size)},
                       num_parallel_calls=tf.data.AUTOTUNE)


def load_emoji(image_size=64):
    """The 1,911 Noto emoji (64×64 upstream) with their labels and tags; see :func:`emoji_records`."""
    return picture_dataset("emoji", emoji_records(), image_size)


def load_tuxpaint(image_size=64):
    """The 785 Tux Paint stamps that have a PNG picture, with captions and category.

    The 165 stamps drawn only as SVG are left out (no SVG rasteriser in the stack); their captions are in
    :func:`tuxpaint_records`.
    """
    records = [record for record in tuxpaint_records() if record["image"].endswith(".png")]
    return picture_dataset("tuxpaint", records, image_size)


def image_splits(name):
    """((train images, labels), (test images, labels)) of a labelled image data set: Fashion-MNIST's own split,
    or MNIST-5k with every fifth image held out (4,000 / 1,000)."""
    if name == "fashion_mnist":
        return fashion_mnist_arrays("train"), fashion_mnist_arrays("test")
    if name == "mnist_5k":
        images, labels = mnist_5k_arrays()
        held_out = np.arange(len(images)) % 5 == 0
        return (images[~held_out], labels[~held_out]), (images[held_out], labels[held_out])
    raise ValueError(f"Unknown image data set {name!r}; choose fashion_mnist or mnist_5k.")
