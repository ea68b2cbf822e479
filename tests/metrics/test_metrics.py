import numpy as np
import pytest
import tensorflow as tf
from reference import normalise

from tfcl.eval import knn, linear_probe
from tfcl.metrics import alignment, effective_rank, embedding_std, uniformity


def test_collapse_metrics_match_numpy():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(12, 6)), rng.normal(size=(12, 6))
    n1, n2 = normalise(z1), normalise(z2)
    expected_alignment = np.mean(np.sum((n1 - n2) ** 2, axis=1))
    sq = np.sum((n1[:, None] - n1[None]) ** 2, axis=-1)[~np.eye(12, dtype=bool)]
    expected_uniformity = np.log(np.mean(np.exp(-2 * sq)))
    centred = n1 - n1.mean(0)
    eigenvalues = np.clip(np.linalg.eigvalsh(centred.T @ centred / 12), 0, None)
    p = eigenvalues / eigenvalues.sum()
    expected_rank = np.exp(-np.sum(p[p > 0] * np.log(p[p > 0])))
    z1_tf, z2_tf = tf.constant(z1, tf.float32), tf.constant(z2, tf.float32)
    assert float(alignment(z1_tf, z2_tf)) == pytest.approx(expected_alignment, rel=1e-5)
    assert float(uniformity(z1_tf)) == pytest.approx(expected_uniformity, rel=1e-5)
    assert float(embedding_std(z1_tf)) == pytest.approx(np.mean(n1.std(0)), rel=1e-5)
    assert float(effective_rank(z1_tf)) == pytest.approx(expected_rank, rel=1e-4)


@pytest.mark.parametrize(("rows", "columns"), [(12, 6), (6, 12)])
def test_effective_rank_matches_the_covariance_spectrum_for_batches_narrower_or_wider_than_the_embedding(rows, columns):
    z = np.random.default_rng(3).normal(size=(rows, columns))
    centred = normalise(z) - normalise(z).mean(0)
    eigenvalues = np.clip(np.linalg.eigvalsh(centred.T @ centred / rows), 0, None)  # columns × columns
    p = eigenvalues[eigenvalues > 1e-9] / eigenvalues.sum()
    expected_rank = np.exp(-np.sum(p * np.log(p)))
    assert float(effective_rank(tf.constant(z, tf.float32))) == pytest.approx(expected_rank, rel=1e-4)
    traced = tf.function(effective_rank, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    assert float(traced(tf.constant(z, tf.float32))) == pytest.approx(expected_rank, rel=1e-4)


def test_collapsed_embeddings_are_flagged():
    rng = np.random.default_rng(1)
    collapsed = tf.constant(np.ones((32, 16)) + 1e-4 * rng.normal(size=(32, 16)), tf.float32)
    spread = tf.constant(rng.normal(size=(256, 16)), tf.float32)
    assert float(embedding_std(collapsed)) < 1e-3 < 0.2 / 4 < float(embedding_std(spread))
    assert float(effective_rank(spread)) > 12
    assert float(uniformity(collapsed)) > -1e-3 > -2 > float(uniformity(spread))


def test_weighted_knn_matches_a_literal_vote():
    rng = np.random.default_rng(2)
    train, labels = rng.normal(size=(50, 8)), rng.integers(0, 3, 50)
    test, test_labels = rng.normal(size=(20, 8)), rng.integers(0, 3, 20)
    similarity = normalise(test) @ normalise(train).T
    correct = 0
    for row, label in zip(similarity, test_labels):
        nearest = np.argsort(-row)[:5]
        votes = np.zeros(3)
        np.add.at(votes, labels[nearest], np.exp(row[nearest] / 0.1))
        correct += votes.argmax() == label
    result = knn(train, labels, test, test_labels, k=5, temperature=0.1, chunk_size=7)
    assert result.top1 == pytest.approx(correct / 20)
    assert result.protocol == "weighted cosine kNN (k=5, T=0.1)"


def test_linear_probe_separates_separable_classes():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 10)) * 5
    labels = rng.integers(0, 4, 400)
    features = centres[labels] + rng.normal(size=(400, 10))
    # 30 full-batch steps at lr 1e-2, not the protocol's 1000 steps at 1e-3: classes this far apart need no more.
    result = linear_probe(features[:300], labels[:300], features[300:], labels[300:], min_steps=0, learning_rate=1e-2)
    assert result.top1 > 0.95 and "linear probe" in result.protocol
