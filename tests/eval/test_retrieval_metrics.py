"""Retrieval metrics and TF-IDF baselines against small hand-computed examples."""

import numpy as np
import pytest

from tfcl.eval import retrieval

T, F = True, False


def test_multi_hot_marks_vocabulary_topics_and_ignores_the_rest():
    matrix = retrieval.multi_hot([["猫", "狗"], ["未知"], []], ["狗", "猫", "鱼"])
    np.testing.assert_array_equal(matrix, [[T, T, F], [F, F, F], [F, F, F]])


def test_ranks_hits_and_mrr_by_hand():
    scores = [
        [0.9, 0.5, 0.1],  # gold first: rank 1
        [0.2, 0.8, 0.3],  # gold last: rank 3
        [0.5, 0.5, 0.5],  # all tied: ties count against the gold topic, rank 3
        [0.1, 0.9, 0.5],
    ]  # two gold topics (0 and 2): the better one (0.5) is beaten by 0.9 only, rank 2
    gold = [[T, F, F], [T, F, F], [F, T, F], [T, F, T]]
    np.testing.assert_array_equal(retrieval.topic_ranks(scores, gold), [1, 3, 3, 2])
    metrics = retrieval.topic_prediction_metrics(scores, gold, ks=(1, 2))
    assert metrics == pytest.approx(
        {"hit@1": 1 / 4, "hit@2": 2 / 4, "mrr": (1 + 1 / 3 + 1 / 3 + 1 / 2) / 4, "posts": 4}
    )


def test_ranks_need_a_gold_topic_per_post_and_matching_shapes():
    with pytest.raises(ValueError, match=r"posts \[1\] have no gold topic"):
        retrieval.topic_ranks([[1.0, 0.0], [0.0, 1.0]], [[T, F], [F, F]])
    with pytest.raises(ValueError, match="shape"):
        retrieval.topic_ranks([[1.0, 0.0]], [[T, F, F]])


def test_neighbour_precision_by_hand():
    similarities = [[0.9, 0.8, 0.1, 0.7], [0.1, 0.2, 0.9, 0.3]]
    query_topics = [[T, F], [F, T]]
    index_topics = [[T, F], [F, T], [F, T], [T, T]]
    # query 0: neighbours 0, 1 → shares with 0 only; query 1: neighbours 2, 3 → both share topic 1.
    assert retrieval.neighbour_precision(similarities, query_topics, index_topics, k=2) == {
        "precision@2": pytest.approx(3 / 4),
        "queries": 2,
    }
    # Excluding index post 1 for query 0 (e.g. the query itself): neighbours 0, 3 → both share.
    exclude = [[F, T, F, F], [F, F, F, F]]
    assert (
        retrieval.neighbour_precision(similarities, query_topics, index_topics, k=2, exclude=exclude)["precision@2"]
        == 1.0
    )
    assert retrieval.neighbour_precision(similarities, query_topics, index_topics, k=1)["precision@1"] == 1.0
    with pytest.raises(ValueError, match="index size"):
        retrieval.neighbour_precision(similarities, query_topics, index_topics, k=5)


def test_tfidf_baselines_score_by_shared_characters():
    train_documents = ["猫咪和狗狗", "足球比赛进球"]
    vectorizer = retrieval.char_tfidf(train_documents)
    centroid = retrieval.tfidf_centroid_scores(vectorizer, train_documents, [[T, F], [F, T]], ["狗狗", "进球了"])
    assert centroid.shape == (2, 2)
    assert centroid[0, 0] > 0 and centroid[0, 1] == 0 and centroid[1, 1] > 0 and centroid[1, 0] == 0
    names = retrieval.tfidf_name_scores(vectorizer, ["猫咪", "足球"], ["我爱足球", "天气"])
    np.testing.assert_array_equal(names > 0, [[F, T], [F, F]])
    similarities = retrieval.tfidf_similarities(vectorizer, ["足球比赛进球"], train_documents)
    np.testing.assert_allclose(similarities, [[0.0, 1.0]], atol=1e-12)
