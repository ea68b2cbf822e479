import keras
import numpy as np
import pytest
import tensorflow as tf
from reference import assert_distributed_equivalence

from tfcl.models.simcse import SimCSE
from tfcl.optimizers import LazyAdamW
from tfcl.text import NgramEncoder

RATE, DECAY, BETA_1, BETA_2, EPSILON = 0.1, 0.05, 0.9, 0.999, 1e-7


def lazy_adamw_reference(table, steps):
    """NumPy LazyAdamW: ``steps`` is a list of ``(rows, values)`` sparse gradients (rows may repeat); each step
    decays and moves only the rows it names, with Adam moments kept per row and bias correction by the step."""
    table, m, v = table.astype(np.float64), np.zeros_like(table, np.float64), np.zeros_like(table, np.float64)
    for step, (rows, values) in enumerate(steps, start=1):
        gradient = np.zeros_like(table)
        np.add.at(gradient, rows, values)
        touched = np.unique(rows)
        g = gradient[touched]
        m[touched] = BETA_1 * m[touched] + (1 - BETA_1) * g
        v[touched] = BETA_2 * v[touched] + (1 - BETA_2) * g**2
        alpha = RATE * np.sqrt(1 - BETA_2**step) / (1 - BETA_1**step)
        table[touched] -= RATE * DECAY * table[touched] + alpha * m[touched] / (np.sqrt(v[touched]) + EPSILON)
    return table


def optimizer(kind=LazyAdamW):
    return kind(RATE, weight_decay=DECAY, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPSILON)


def apply(optimizer_, variable, gradients):
    for gradient in gradients:
        optimizer_.apply([gradient], [variable])
    return variable.numpy()


def test_sparse_steps_move_only_the_rows_they_touch_as_the_numpy_reference():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(10, 3)).astype("float32")
    steps = [(np.array([1, 4, 1, 7]), rng.normal(size=(4, 3))), (np.array([4, 2]), rng.normal(size=(2, 3)))]
    gradients = [tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows)) for rows, values in steps]
    after = apply(optimizer(), keras.Variable(table), gradients)
    np.testing.assert_allclose(after, lazy_adamw_reference(table, steps), rtol=1e-5, atol=1e-6)
    untouched = [0, 3, 5, 6, 8, 9]
    np.testing.assert_array_equal(after[untouched], table[untouched])  # no decay, no momentum off the batch


def test_dense_gradients_and_sparse_ones_covering_every_row_are_adamw():
    rng = np.random.default_rng(1)
    table = rng.normal(size=(4, 3)).astype("float32")
    dense = [tf.constant(rng.normal(size=(4, 3)), tf.float32) for _ in range(3)]
    expected = apply(optimizer(keras.optimizers.AdamW), keras.Variable(table), dense)
    np.testing.assert_allclose(apply(optimizer(), keras.Variable(table), dense), expected, rtol=1e-6, atol=1e-7)
    # The same gradients as slices that name row 0 three times (g0 − g0 + g0): summed before the update.
    split = [tf.IndexedSlices(tf.concat([g, -g[:1], g[:1]], 0), tf.constant([0, 1, 2, 3, 0, 0])) for g in dense]
    np.testing.assert_allclose(apply(optimizer(), keras.Variable(table), split), expected, rtol=1e-5, atol=1e-6)


def test_config_round_trips_and_amsgrad_is_refused():
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer()))
    assert isinstance(restored, LazyAdamW) and restored.get_config() == optimizer().get_config()
    with pytest.raises(ValueError, match="AMSGrad"):
        LazyAdamW(amsgrad=True)


def test_ngram_simcse_with_lazy_adamw_on_two_replicas_equals_one_device():
    def build():
        keras.utils.set_random_seed(0)
        encoder = NgramEncoder(num_buckets=256, orders=(1, 2), embedding_dim=8, max_ngrams=12, dropout=0.0)
        return SimCSE(encoder, keras.layers.Identity(), temperature=0.1, supervised=True)

    texts = ["今天天气很好", "天气不错", "我不喜欢下雨", "北京的春天", "上海下雪了", "明天会更好", "猫在睡觉", "狗在跑"]
    tokens = build().encoder.tokenize(tf.constant(texts))
    batch = tuple({"ngram_ids": tf.roll(tokens["ngram_ids"], shift, axis=0)} for shift in (0, 1, 2))
    assert_distributed_equivalence(build, batch, optimizer=lambda: LazyAdamW(0.01, weight_decay=0.1))
