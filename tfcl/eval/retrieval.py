"""Retrieval metrics for 博文预测话题 (post → topics) and 找相似博文 (post → similar posts), and TF-IDF baselines.

Plain arrays in, plain dicts out, so a notebook, the benchmark and a pipeline's evaluation step compute the same
numbers. Topics are multi-hot boolean matrices ``[posts, topics]`` over a topic vocabulary (:func:`multi_hot`).

* Topic prediction: every vocabulary topic is scored for each held-out post (its hashtags removed: the document is
  the input); the post's *rank* is the position of its best-ranked true topic, ties counted against it (a model
  that gives every topic the same score ranks last, not first). hit@k = share of posts with rank ≤ k; MRR = mean
  of 1 / rank.
* Similar posts: precision@k = for each query post, the share of its k most similar index posts that share at
  least one topic with it, averaged over queries.
* TF-IDF on character n-grams (Chinese has no spaces; characters and character pairs carry the words), fitted on
  the training documents: documents vs topic centroids (the mean normalised vector of the training documents
  carrying the topic: a supervised nearest-centroid classifier), documents vs topic names, and document vs
  document cosine for similar posts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize


def multi_hot(topic_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """``[len(topic_lists), len(vocabulary)]`` bool: which vocabulary topics each post carries (others ignored)."""
    index = {topic: i for i, topic in enumerate(vocabulary)}
    matrix = np.zeros((len(topic_lists), len(vocabulary)), bool)
    for row, topics in enumerate(topic_lists):
        matrix[row, [index[topic] for topic in topics if topic in index]] = True
    return matrix


def topic_ranks(scores: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """1-based rank of each post's best-ranked gold topic among all topics; ties count against the gold topic.

    Args:
      scores: ``[posts, topics]`` float, higher is more likely.
      gold: ``[posts, topics]`` bool, each row with at least one True.
    """
    scores, gold = np.asarray(scores, np.float64), np.asarray(gold, bool)
    if scores.shape != gold.shape:
        raise ValueError(f"scores {scores.shape} and gold {gold.shape} differ in shape")
    if not gold.any(axis=1).all():
        raise ValueError(f"posts {np.flatnonzero(~gold.any(axis=1))[:10].tolist()} have no gold topic")
    best_gold = np.where(gold, scores, -np.inf).max(axis=1, keepdims=True)
    return 1 + np.sum(~gold & (scores >= best_gold), axis=1)


def topic_prediction_metrics(scores: np.ndarray, gold: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """``{"hit@k" for k in ks, "mrr", "posts"}`` of :func:`topic_ranks`."""
    ranks = topic_ranks(scores, gold)
    return {
        **{f"hit@{k}": float(np.mean(ranks <= k)) for k in ks},
        "mrr": float(np.mean(1.0 / ranks)),
        "posts": int(len(ranks)),
    }


def neighbour_precision(
    similarities: np.ndarray,
    query_topics: np.ndarray,
    index_topics: np.ndarray,
    k: int = 10,
    exclude: np.ndarray | None = None,
) -> dict[str, float]:
    """``{"precision@k", "queries"}``: mean share of each query's ``k`` most similar index posts sharing a topic.

    Args:
      similarities: ``[queries, index]`` float, higher is more similar.
      query_topics, index_topics: multi-hot ``[queries, topics]`` and ``[index, topics]`` bool.
      k: neighbours per query (at most the index size).
      exclude: optional ``[queries, index]`` bool, pairs never returned (e.g. a query that is also in the index).
    """
    similarities = np.array(similarities, np.float64)
    if exclude is not None:
        similarities[np.asarray(exclude, bool)] = -np.inf
    if not 0 < k <= similarities.shape[1]:
        raise ValueError(f"k must be in [1, {similarities.shape[1]}] (the index size), got {k}")
    neighbours = np.argsort(-similarities, axis=1, kind="stable")[:, :k]
    shares_topic = np.asarray(query_topics, np.int32) @ np.asarray(index_topics, np.int32).T > 0
    hits = np.take_along_axis(shares_topic, neighbours, axis=1)
    return {f"precision@{k}": float(hits.mean()), "queries": int(len(hits))}


def char_tfidf(documents: Sequence[str], ngram_range: tuple[int, int] = (1, 2)) -> TfidfVectorizer:
    """A TF-IDF vectorizer of character n-grams (sublinear tf, rows L2-normalised) fitted on ``documents``."""
    return TfidfVectorizer(analyzer="char", ngram_range=ngram_range, sublinear_tf=True).fit(documents)


def tfidf_centroid_scores(
    vectorizer: TfidfVectorizer, train_documents: Sequence[str], train_topics: np.ndarray, documents: Sequence[str]
) -> Any:
    """``[documents, topics]`` cosine between each document and each topic's centroid of training documents."""
    train_topics = np.asarray(train_topics, np.float64)
    centroids = normalize(train_topics.T @ vectorizer.transform(train_documents))  # [topics, features]
    return vectorizer.transform(documents) @ centroids.T


def tfidf_name_scores(vectorizer: TfidfVectorizer, topic_names: Sequence[str], documents: Sequence[str]) -> np.ndarray:
    """``[documents, topics]`` cosine between each document and the topic's name (the hashtag text itself)."""
    return (vectorizer.transform(documents) @ vectorizer.transform(topic_names).T).toarray()


def tfidf_similarities(vectorizer: TfidfVectorizer, queries: Sequence[str], index: Sequence[str]) -> Any:
    """``[queries, index]`` cosine between documents."""
    return (vectorizer.transform(queries) @ vectorizer.transform(index).T).toarray()
