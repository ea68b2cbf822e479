import numpy as np
import pytest
import tensorflow as tf
from reference import normalise, two_replica_strategy

from tfcl.losses import cosent_loss


def cosent_reference(first, second, scores, scale=20.0):
    """Literal CoSENT: log(1 + Σ_{s_i > s_j} exp(λ (cos_j − cos_i)))."""
    cosines = np.sum(normalise(first.astype(np.float64)) * normalise(second.astype(np.float64)), axis=1)
    total = 1.0
    for i in range(len(scores)):
        for j in range(len(scores)):
            if scores[i] > scores[j]:
                total += np.exp(scale * (cosines[j] - cosines[i]))
    return float(np.log(total))


def scored_pairs(n=8, seed=0):
    rng = np.random.default_rng(seed)
    first, second = (normalise(rng.normal(size=(n, 6))).astype(np.float32) for _ in range(2))
    scores = rng.integers(0, 6, n).astype(np.float32)  # ties, as STS-B's scores have
    return first, second, scores


@pytest.mark.parametrize("scale", [1.0, 20.0])
def test_cosent_matches_numpy(scale):
    first, second, scores = scored_pairs()
    assert float(cosent_loss(first, second, scores, scale)) == pytest.approx(
        cosent_reference(first, second, scores, scale), rel=1e-5
    )


def test_cosent_is_small_for_cosines_ranked_like_the_scores_large_when_reversed_and_zero_without_order():
    angles = np.linspace(0.0, np.pi, 8)
    anchor = np.tile([[1.0, 0.0]], (8, 1)).astype(np.float32)
    partner = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)  # its cosine with [1, 0] falls
    scores = np.arange(8, dtype=np.float32)
    in_order = float(cosent_loss(anchor, partner, scores[::-1].copy()))
    reversed_order = float(cosent_loss(anchor, partner, scores))
    assert in_order < 0.5 and reversed_order > 20.0
    assert float(cosent_loss(anchor, partner, np.ones(8, np.float32))) == 0.0  # all tied: nothing to rank


def test_two_replicas_give_the_global_batch_loss_and_its_gradients():
    """Each replica's cosines are ranked against the other's: the loss and (after Keras' 1 / replicas scaling and
    the gather's gradient) each replica's input gradients equal one device's on the whole batch."""
    first, second, scores = scored_pairs(n=8, seed=1)

    def loss_and_gradients(a, b, s, replicas):
        a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            loss = cosent_loss(a, b, s)
            scaled = loss / replicas
        return loss, tape.gradient(scaled, [a, b])

    loss_one, gradients_one = loss_and_gradients(first, second, scores, 1)
    strategy = two_replica_strategy()
    halves = strategy.experimental_distribute_values_from_function(
        lambda ctx: tuple(x[ctx.replica_id_in_sync_group * 4 :][:4] for x in (first, second, scores))
    )
    loss_two, gradients_two = strategy.run(lambda a, b, s: loss_and_gradients(a, b, s, 2), args=halves)
    for replica_loss in strategy.experimental_local_results(loss_two):
        np.testing.assert_allclose(replica_loss.numpy(), loss_one.numpy(), rtol=1e-5)
    for one, two in zip(gradients_one, gradients_two):
        assert np.abs(one.numpy()).max() > 1e-3
        gathered = np.concatenate([g.numpy() for g in strategy.experimental_local_results(two)])
        np.testing.assert_allclose(gathered, one.numpy(), rtol=1e-4, atol=1e-6)
