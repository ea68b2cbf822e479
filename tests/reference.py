"""NumPy references and shared checks used by several test files."""

import functools

import keras
import numpy as np
import tensorflow as tf


def normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def log_softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def nt_xent_reference(z1, z2, temperature):
    """Literal SimCLR NT-Xent: 2N anchors, positive = the other view, denominator over all k != i."""
    z = normalise(np.concatenate([z1, z2]).astype(np.float64))
    n = len(z1)
    losses = []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = z @ z[i] / temperature
        denominator = np.sum(np.exp(np.delete(sims, i)))
        losses.append(-np.log(np.exp(sims[j]) / denominator))
    return float(np.mean(losses))


@functools.cache
def two_replica_strategy():
    """One shared strategy: separate MirroredStrategy objects in one process collide on collective keys."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "tests/conftest.py should provide two logical CPU devices"
    return tf.distribute.MirroredStrategy(devices)


def _one_step(build_model, batch, optimizer, strategy, initial_weights):
    global_batch = len(tf.nest.flatten(batch)[0])
    with strategy.scope():
        model = build_model()
        model.compute_contrastive_loss(batch, training=False)  # creates every variable
        if initial_weights is not None:
            model.set_weights(initial_weights)
        start = model.get_weights()
        model.compile(optimizer=optimizer())
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(global_batch)
    loss = model.fit(dataset, epochs=1, verbose=0).history["loss"][0]
    return loss, start, model.get_weights()


def assert_distributed_equivalence(build_model, batch, rtol=1e-4, atol=1e-5, step_tolerance=None, optimizer=None):
    """One ``fit`` step (``optimizer()``, SGD(lr=1) by default) on the same global batch, from the same weights, on
    one device and on two replicas: the loss and every variable afterwards (weights, batch-norm statistics) must
    agree.

    ``step_tolerance`` compares each variable's change instead, within that fraction of the variable's largest
    change on one device: for losses whose single step moves weights by orders of magnitude, where float32 sums
    in another order across replicas differ in proportion to the step, not to ``atol``.
    """
    optimizer = optimizer or (lambda: keras.optimizers.SGD(learning_rate=1.0))
    loss_one, start, after_one = _one_step(build_model, batch, optimizer, tf.distribute.get_strategy(), None)
    loss_two, _, after_two = _one_step(build_model, batch, optimizer, two_replica_strategy(), start)
    np.testing.assert_allclose(loss_two, loss_one, rtol=rtol, atol=atol)
    moved = [not np.allclose(a, b) for a, b in zip(start, after_one)]
    assert sum(moved) > 0, "the step did not change any weight"
    for initial, one, two in zip(start, after_one, after_two):
        if step_tolerance is None:
            np.testing.assert_allclose(two, one, rtol=rtol, atol=atol)
        else:
            step_one, step_two = one - initial, two - initial
            scale = float(np.max(np.abs(step_one), initial=0.0))
            np.testing.assert_allclose(step_two, step_one, rtol=0, atol=step_tolerance * scale + atol)
