"""MoCo, BYOL/SimSiam, SwAV and Barlow Twins losses against literal NumPy references, on one and two replicas."""

import numpy as np
import pytest
import tensorflow as tf
from reference import log_softmax, normalise, two_replica_strategy

from tfcl.losses import barlow_twins, moco_info_nce, negative_cosine, sinkhorn, swapped_prediction


def constant(x):
    return tf.constant(x, tf.float32)


def on_two_replicas(loss_fn, *arrays):
    """``loss_fn`` on two replicas, each given its half (along axis 0) of every array; per-replica results."""
    strategy = two_replica_strategy()
    halves = [np.split(np.asarray(a, np.float32), 2) for a in arrays]
    inputs = [
        strategy.experimental_distribute_values_from_function(
            lambda context, h=h: tf.constant(h[context.replica_id_in_sync_group])
        )
        for h in halves
    ]
    result = tf.function(lambda *args: strategy.run(loss_fn, args=args))(*inputs)
    return [t.numpy() for t in strategy.experimental_local_results(result)]


def moco_reference(q, k, queue, temperature):
    """He et al.'s pseudo-code: l_pos = q·k, l_neg = q·queue, logits = [l_pos, l_neg] / τ, label 0."""
    positives = np.sum(q * k, axis=1, keepdims=True)
    logits = np.concatenate([positives, q @ queue.T], axis=1) / temperature
    return float(-np.mean(log_softmax(logits)[:, 0]))


def sinkhorn_reference(scores, epsilon, iterations):
    """The official SwAV ``distributed_sinkhorn`` on one process (Q is prototypes x samples)."""
    q = np.exp(scores / epsilon).T
    num_prototypes, num_samples = q.shape
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(axis=1, keepdims=True)
        q /= num_prototypes
        q /= q.sum(axis=0, keepdims=True)
        q /= num_samples
    return (q * num_samples).T


def barlow_twins_reference(z1, z2, weight):
    def standardise(z):
        return (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + 1e-5)

    c = standardise(z1).T @ standardise(z2) / len(z1)
    off_diagonal = c[~np.eye(len(c), dtype=bool)]
    return float(np.sum((1 - np.diag(c)) ** 2) + weight * np.sum(off_diagonal**2))


def test_negative_cosine_matches_numpy_and_gives_byols_regression():
    rng = np.random.default_rng(0)
    p, z = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    expected = -np.mean(np.sum(normalise(p) * normalise(z), axis=1))
    loss = float(negative_cosine(constant(p), constant(z)))
    assert loss == pytest.approx(expected, rel=1e-5)
    squared_error = np.mean(np.sum((normalise(p) - normalise(z)) ** 2, axis=1))
    assert 2 + 2 * loss == pytest.approx(squared_error, rel=1e-5)  # BYOL: ||p̂ − ẑ||² = 2 − 2cos
    assert float(negative_cosine(constant(p), constant(3 * p))) == pytest.approx(-1.0, abs=1e-6)


@pytest.mark.parametrize("temperature", [0.07, 0.2])
def test_moco_info_nce_matches_numpy(temperature):
    rng = np.random.default_rng(1)
    q, k, queue = (
        normalise(rng.normal(size=(5, 8))),
        normalise(rng.normal(size=(5, 8))),
        normalise(rng.normal(size=(11, 8))),
    )
    loss = moco_info_nce(constant(q), constant(k), constant(queue), temperature)
    assert float(loss) == pytest.approx(moco_reference(q, k, queue, temperature), rel=1e-5)


@pytest.mark.parametrize("weight", [None, 0.0051])
def test_barlow_twins_matches_numpy(weight):
    rng = np.random.default_rng(2)
    z1 = rng.normal(size=(16, 8))
    z2 = z1 + 0.5 * rng.normal(size=(16, 8))
    expected = barlow_twins_reference(z1, z2, 1 / 8 if weight is None else weight)
    assert float(barlow_twins(constant(z1), constant(z2), weight)) == pytest.approx(expected, rel=1e-4)


def test_barlow_twins_standardises_over_the_global_batch():
    rng = np.random.default_rng(3)
    z1, z2 = rng.normal(size=(8, 4)) + 3.0, rng.normal(size=(8, 4))
    z1[4:] *= 5.0  # the two halves have different statistics: per-replica standardisation would differ
    per_replica = on_two_replicas(lambda a, b: barlow_twins(a, b), z1, z2)
    expected = barlow_twins_reference(z1, z2, 1 / 4)
    np.testing.assert_allclose(per_replica, [expected, expected], rtol=1e-4)


@pytest.mark.parametrize("iterations", [1, 3])
def test_sinkhorn_matches_the_official_algorithm(iterations):
    rng = np.random.default_rng(4)
    scores = normalise(rng.normal(size=(12, 6))) @ normalise(rng.normal(size=(5, 6))).T
    codes = sinkhorn(constant(scores), epsilon=0.05, iterations=iterations).numpy()
    np.testing.assert_allclose(codes, sinkhorn_reference(scores, 0.05, iterations), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(codes.sum(axis=1), np.ones(12), rtol=1e-5)  # each sample's codes sum to 1


def test_sinkhorn_equipartitions_and_has_no_gradient():
    rng = np.random.default_rng(5)
    scores = constant(normalise(rng.normal(size=(40, 6))) @ normalise(rng.normal(size=(4, 6))).T)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        codes = sinkhorn(scores, epsilon=0.5, iterations=50)
    np.testing.assert_allclose(codes.numpy().sum(axis=0), np.full(4, 40 / 4), rtol=1e-3)  # B/K per prototype
    assert tape.gradient(codes, scores) is None


def test_sinkhorn_sums_over_replicas():
    rng = np.random.default_rng(6)
    scores = normalise(rng.normal(size=(8, 6))) @ normalise(rng.normal(size=(5, 6))).T
    scores[4:] += 0.5  # replica 1's samples prefer other prototypes than replica 0's
    halves = on_two_replicas(lambda s: sinkhorn(s, 0.05, 3), scores)
    np.testing.assert_allclose(np.concatenate(halves), sinkhorn_reference(scores, 0.05, 3), rtol=1e-4, atol=1e-7)


def test_swapped_prediction_matches_numpy():
    rng = np.random.default_rng(7)
    scores = [rng.uniform(-1, 1, size=(4, 5)) for _ in range(4)]  # 2 large + 2 small crops
    codes = [sinkhorn_reference(s, 0.05, 3) for s in scores[:2]]
    expected = 0.0
    for s, q in enumerate(codes):
        others = [t for t in range(4) if t != s]
        expected += sum(-np.mean(np.sum(q * log_softmax(scores[t] / 0.1), axis=1)) for t in others) / len(others)
    loss = swapped_prediction([constant(s) for s in scores], [constant(q) for q in codes], temperature=0.1)
    assert float(loss) == pytest.approx(expected / 2, rel=1e-5)
