import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from text_helpers import require

from tfcl.data.text import load_lee_corpus
from tfcl.eval.text_similarity import (
    alignment_uniformity,
    delete_characters,
    document_embeddings,
    lee_similarity,
    lee_tfidf_baseline,
    pair_correlations,
    sentiment_probe,
    sentiment_split,
    split_sentences,
)


def test_pair_correlations_are_one_for_a_perfect_embedding_and_minus_one_reversed():
    angles = np.linspace(0, np.pi / 2, 5)
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    pairs = [(0, j, 1.0 - j / 4) for j in range(1, 5)]
    assert pair_correlations(embeddings, pairs) == pytest.approx({"spearman": 1.0, "pearson": 1.0}, abs=0.03)
    reversed_pairs = [(i, j, -score) for i, j, score in pairs]
    assert pair_correlations(embeddings, reversed_pairs)["spearman"] == pytest.approx(-1.0)


def test_documents_are_the_mean_of_their_own_sentences():
    documents = ["a b. c!", "d? e。f！"]
    assert [split_sentences(d) for d in documents] == [["a b.", "c!"], ["d?", "e。", "f！"]]
    vectors = {"a b.": [1, 0, 0], "c!": [0, 1, 0], "d?": [0, 0, 1], "e。": [0, 0, 2], "f！": [0, 0, 3]}
    embeddings = document_embeddings(lambda texts: np.array([vectors[t] for t in texts], float), documents)
    np.testing.assert_allclose(embeddings, [[2**-0.5, 2**-0.5, 0], [0, 0, 1]])


def test_lee_tfidf_baseline_and_the_same_protocol_through_embed():
    corpus = require(load_lee_corpus)
    assert len(corpus.pairs) == 1225
    baseline = lee_tfidf_baseline(corpus)
    assert 0.2 < baseline["spearman"] < 0.35 and 0.45 < baseline["pearson"] < 0.6
    vectorizer = TfidfVectorizer().fit(corpus.background + corpus.documents)
    by_sentences = lee_similarity(lambda texts: vectorizer.transform(texts).toarray(), corpus)
    assert by_sentences["spearman"] == pytest.approx(baseline["spearman"], abs=0.05)


def test_sentiment_split_is_stratified_disjoint_and_seeded():
    labels = np.array([1] * 600 + [0] * 400)
    train, test = sentiment_split(labels, num_train=300, num_test=100, seed=3)
    assert abs(len(train) - 300) <= 2 and abs(len(test) - 100) <= 2 and not set(train) & set(test)
    assert labels[train].mean() == pytest.approx(0.6, abs=0.01) and labels[test].mean() == pytest.approx(0.6, abs=0.02)
    np.testing.assert_array_equal(sentiment_split(labels, 300, 100, seed=3)[0], train)


def test_probe_reads_a_label_revealing_embedding_and_geometry_flags_a_collapsed_one():
    texts = [f"{'好' if i % 2 else '差'}{i}" for i in range(200)]
    labels = np.arange(200) % 2

    def embed(batch):
        return np.array([[t.startswith("好"), len(t)] for t in batch], float) + 0.01

    assert sentiment_probe(embed, texts, labels, sentiment_split(labels, 100, 100)) == 1.0
    assert delete_characters(["一二三四五六七八九十"] * 2, rate=0.5, seed=0)[0] != "一二三四五六七八九十"
    collapsed = alignment_uniformity(lambda batch: np.ones((len(batch), 3)), texts)
    assert collapsed == pytest.approx({"alignment": 0.0, "uniformity": 0.0}, abs=1e-6)
