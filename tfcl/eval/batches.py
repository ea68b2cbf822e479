"""Run a model function over many inputs in batches: the one helper behind every embedding index and evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf


def predict_in_batches(
    function: Callable[[tf.Tensor], Any],
    inputs: Sequence[Any] | np.ndarray,
    batch_size: int = 256,
    input_signature: tf.TensorSpec | None = None,
) -> Any:
    """``function`` over ``inputs`` (an array, or a list of strings or bytes), ``batch_size`` at a time.

    ``function`` maps a batch to a tensor (e.g. L2-normalised ``[n, d]`` embeddings), or to a dict of tensors (a
    SavedModel signature); the outputs are concatenated into one NumPy array (or a dict of them). With
    ``input_signature``, ``function`` runs as one ``tf.function`` traced for it; otherwise as it is. Raises
    ``ValueError`` if there are no inputs.
    """
    if len(inputs) == 0:
        raise ValueError("nothing to run on: got no inputs (no texts, no pictures)")
    if input_signature is not None:
        function = tf.function(function, input_signature=[input_signature])
    batches = [function(tf.constant(inputs[start : start + batch_size])) for start in range(0, len(inputs), batch_size)]
    if isinstance(batches[0], dict):
        return {name: np.concatenate([np.asarray(batch[name]) for batch in batches]) for name in batches[0]}
    return np.concatenate([np.asarray(batch) for batch in batches])
