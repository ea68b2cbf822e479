"""Frozen-encoder evaluation protocols. Each takes features and labels and returns an :class:`EvalResult`
that names its protocol, so numbers from different protocols are never confused."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class EvalResult:
    protocol: str
    top1: float

    def __str__(self) -> str:
        return f"{self.protocol}: top-1 {100 * self.top1:.2f}%"


def extract_features(encoder: keras.Model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Encoder outputs for an array of images (uint8 in [0, 255] or float in [0, 1]) as a float32 array."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    return keras.ops.convert_to_numpy(encoder.predict(images, batch_size=batch_size, verbose=0)).astype(np.float32)


def knn(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    k: int = 20,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> EvalResult:
    """Weighted cosine kNN (Wu et al. 2018): each of the k nearest training features votes exp(cos / T)."""
    train_features, test_features = np.float32(train_features), np.float32(test_features)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    bank = tf.math.l2_normalize(tf.constant(train_features), axis=1)
    bank_labels = tf.constant(train_labels, tf.int32)
    correct = 0
    for start in range(0, len(test_features), chunk_size):
        queries = tf.math.l2_normalize(tf.constant(test_features[start : start + chunk_size]), axis=1)
        similarity, neighbours = tf.math.top_k(tf.matmul(queries, bank, transpose_b=True), k=k)
        votes = (
            tf.one_hot(tf.gather(bank_labels, neighbours), num_classes) * tf.exp(similarity / temperature)[..., None]
        )
        predictions = tf.argmax(tf.reduce_sum(votes, axis=1), axis=1, output_type=tf.int32).numpy()
        correct += int(np.sum(predictions == test_labels[start : start + chunk_size]))
    return EvalResult(f"weighted cosine kNN (k={k}, T={temperature})", correct / len(test_features))


def linear_probe(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    epochs: int = 30,
    min_steps: int = 1000,
    batch_size: int = 512,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> EvalResult:
    """Softmax regression on standardised frozen features (Adam, ``epochs`` epochs but at least ``min_steps``
    steps); reports test top-1."""
    train_features, test_features = np.float32(train_features), np.float32(test_features)
    mean, std = train_features.mean(0), train_features.std(0) + 1e-6
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    steps_per_epoch = -(-len(train_features) // batch_size)
    epochs = max(epochs, -(-min_steps // steps_per_epoch))
    keras.utils.set_random_seed(seed)
    classifier = keras.Sequential([keras.Input((train_features.shape[1],)), keras.layers.Dense(num_classes)])
    classifier.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit((train_features - mean) / std, train_labels, epochs=epochs, batch_size=batch_size, verbose=0)
    _, accuracy = classifier.evaluate((test_features - mean) / std, test_labels, batch_size=4096, verbose=0)
    return EvalResult(
        f"linear probe (softmax regression on standardised features, Adam lr {learning_rate}, {epochs} epochs)",
        float(accuracy),
    )


PROTOCOLS = {"knn": knn, "linear": linear_probe}


def evaluate_encoder(
    encoder: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    protocol: str = "knn",
    **protocol_kwargs: Any,
) -> EvalResult:
    """Run a protocol on ``train``/``test`` = (images, labels) arrays through the frozen ``encoder``."""
    train_features = extract_features(encoder, train[0])
    test_features = extract_features(encoder, test[0])
    return PROTOCOLS[protocol](
        train_features, np.asarray(train[1]), test_features, np.asarray(test[1]), **protocol_kwargs
    )
