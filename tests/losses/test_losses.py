import numpy as np
import pytest
import tensorflow as tf
from reference import log_softmax, normalise, nt_xent_reference

from tfcl.losses import info_nce, nt_xent


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_matches_numpy(temperature):
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    loss = nt_xent(tf.constant(normalise(z1), tf.float32), tf.constant(normalise(z2), tf.float32), temperature)
    assert float(loss) == pytest.approx(nt_xent_reference(z1, z2, temperature), rel=1e-5)


def test_nt_xent_is_low_for_matching_views_and_high_for_shuffled():
    rng = np.random.default_rng(1)
    z = tf.math.l2_normalize(tf.constant(rng.normal(size=(32, 64)), tf.float32), axis=1)
    aligned = nt_xent(z, z, 0.1)
    shuffled = nt_xent(z, tf.roll(z, 1, axis=0), 0.1)
    assert float(aligned) < 0.1 < float(shuffled)


def test_info_nce_with_exclusion_matches_numpy():
    rng = np.random.default_rng(2)
    anchors, candidates = normalise(rng.normal(size=(4, 5))), normalise(rng.normal(size=(7, 5)))
    positives = np.array([0, 3, 6, 2])
    exclude = np.zeros((4, 7), bool)
    exclude[0, 1] = exclude[2, 4] = True
    logits = anchors @ candidates.T / 0.2
    logits[exclude] = -np.inf
    expected = -np.mean(log_softmax(logits)[np.arange(4), positives])
    loss = info_nce(
        tf.constant(anchors, tf.float32),
        tf.constant(candidates, tf.float32),
        tf.constant(positives),
        0.2,
        exclude=tf.constant(exclude),
    )
    assert float(loss) == pytest.approx(expected, rel=1e-5)
