"""A fast text tower for CPUs: a bag of hashed character n-grams → weighted mean → embedding (fastText-style).

Same interface as :class:`tfcl.text.TextEncoder`: ``call`` takes raw UTF-8 strings (serving, evaluation) or the
output of :meth:`NgramEncoder.tokenize` (training under ``tf.distribute``), everything in TensorFlow ops, so a
SavedModel of it takes raw strings.

Texts are normalised as :class:`tfcl.text.WeiboTokenizer` does (:func:`tfcl.text.normalize_weibo_text`),
lowercased, stripped of whitespace, split into characters, and every character n-gram of the configured orders
is hashed into ``num_buckets`` (id 0 is padding). A text's embedding is ``Σ_g w_g E_g / Σ_g w_g`` over its first
``max_ngrams`` n-grams: ``E`` a learned embedding per bucket, ``w`` a learned positive weight per bucket that
:meth:`NgramEncoder.adapt` sets to the inverse document frequency of a corpus, so the untrained tower is a random
projection of a TF-IDF vector and training moves it from there.

With ``lexical_dim`` the tower also keeps the words themselves (a learned sparse lexical channel beside the dense one,
as BGE-M3's): each distinct n-gram adds ``± v_g (1 + log tf)`` to coordinate ``g mod lexical_dim`` of a second vector
(``tf`` its count in the text, the sublinear term frequency of the TF-IDF baselines; the sign from
``g // lexical_dim``; a count sketch of the bag, so two texts' n-grams collide only by chance, not through a
projection), ``v`` a second learned positive weight per bucket, also set to the IDF by ``adapt``. The output is
``[√(1 − λ) d / ‖d‖, √λ s / ‖s‖]`` for the dense mean ``d``, the sketch ``s`` and ``λ = lexical_weight``: the
cosine of two outputs is ``(1 − λ)`` × their dense cosine + ``λ`` × their lexical one (the untrained lexical cosine
is a TF-IDF cosine; training learns which n-grams matter). Use it without a projection head, which would mix the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfcl.text.tokenizer import normalize_weibo_text


def character_ngrams(texts: tf.Tensor | Sequence[str], orders: Sequence[int]) -> tf.RaggedTensor:
    """``[batch, (n-grams)]`` strings: the character n-grams of each order in ``orders`` of normalised, lowercased
    texts with whitespace removed, order by order."""
    texts = tf.strings.lower(normalize_weibo_text(texts), encoding="utf-8")
    characters = tf.strings.unicode_split(tf.strings.regex_replace(texts, r"\s+", ""), "UTF-8")
    join = tf_text.Reduction.STRING_JOIN
    grams = [tf_text.ngrams(characters, order, reduction_type=join, string_separator="") for order in orders]
    return tf.concat(grams, axis=-1)


@keras.saving.register_keras_serializable(package="tfcl")
class NgramEncoder(keras.Model):
    """Maps a batch of raw UTF-8 strings ``[batch]`` to ``[batch, embedding_dim]`` (see the module docstring).

    Args:
      num_buckets: hash buckets of the n-grams (the embedding table has one more row, for padding).
      orders: the character n-gram orders, e.g. ``(1, 2, 3)``.
      embedding_dim: the width of the embedding, which is the tower's output.
      max_ngrams: n-grams kept per text (the first ones, lowest order first); longer texts are cut.
      dropout: rate at which whole n-grams are dropped in training (the noise of SimCSE-style positives).
      lexical_dim: width of the lexical channel (0: none; see the module docstring).
      lexical_weight: λ, the lexical channel's share of the cosine.
    """

    def __init__(
        self,
        num_buckets: int = 2**18,
        orders: Sequence[int] = (1, 2, 3),
        embedding_dim: int = 256,
        max_ngrams: int = 256,
        dropout: float = 0.1,
        lexical_dim: int = 0,
        lexical_weight: float = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if lexical_dim < 0 or not 0.0 <= lexical_weight <= 1.0:
            raise ValueError(
                f"lexical_dim must be ≥ 0 and lexical_weight in [0, 1], got {lexical_dim}, {lexical_weight}"
            )
        self.num_buckets = num_buckets
        self.orders = tuple(orders)
        self.embedding_dim = embedding_dim
        self.max_ngrams = max_ngrams
        self.dropout = dropout
        self.lexical_dim = lexical_dim
        self.lexical_weight = lexical_weight
        self.embeddings = keras.layers.Embedding(
            num_buckets + 1,
            embedding_dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=embedding_dim**-0.5),
            name="ngram_embeddings",
        )
        self.weights_per_bucket = keras.layers.Embedding(
            num_buckets + 1, 1, embeddings_initializer="ones", name="ngram_weights"
        )
        self.lexical_weights_per_bucket = (
            keras.layers.Embedding(num_buckets + 1, 1, embeddings_initializer="ones", name="lexical_weights")
            if lexical_dim
            else None
        )
        for table in (self.embeddings, *self.weight_tables):
            table.build((None,))
        self.built = True

    @property
    def weight_tables(self) -> list[keras.layers.Embedding]:
        """The per-bucket weight tables: the dense mean's and, with a lexical channel, the sketch's."""
        return [self.weights_per_bucket] + ([self.lexical_weights_per_bucket] if self.lexical_dim else [])

    @property
    def output_dim(self) -> int:
        return self.embedding_dim + self.lexical_dim

    def ngram_ids(self, texts: tf.Tensor | Sequence[str]) -> tf.RaggedTensor:
        """``[batch, (n-grams)]`` int32 bucket ids in ``1..num_buckets`` of each text's n-grams."""
        hashed = tf.strings.to_hash_bucket_fast(character_ngrams(texts, self.orders), self.num_buckets)
        return tf.cast(hashed + 1, tf.int32)

    def tokenize(self, texts: tf.Tensor | Sequence[str]) -> dict[str, tf.Tensor]:
        """``{"ngram_ids": [batch, max_ngrams] int32}``: bucket ids, cut to ``max_ngrams``, padded with 0."""
        ids = self.ngram_ids(texts)[:, : self.max_ngrams]
        return {"ngram_ids": ids.to_tensor(default_value=0, shape=[None, self.max_ngrams])}

    def call(self, texts: tf.Tensor | Sequence[str] | dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        ids = (texts if isinstance(texts, dict) else self.tokenize(texts))["ngram_ids"]
        # Only the real n-grams are looked up (a text has ~35 of its max_ngrams on Weibo and NLI), so a step
        # gathers, and its gradient holds, the rows the batch uses rather than batch × max_ngrams of them.
        ngrams = tf.RaggedTensor.from_tensor(ids, padding=0)
        flat, rows, batch = ngrams.flat_values, ngrams.value_rowids(), ngrams.nrows()
        kept = 1.0
        if training and self.dropout:
            kept = tf.cast(tf.random.uniform(tf.shape(flat)) >= self.dropout, self.compute_dtype)
        weights = tf.nn.softplus(self.weights_per_bucket(flat))[:, 0] * kept
        totals = tf.math.unsorted_segment_sum(weights, rows, batch)
        sums = tf.math.unsorted_segment_sum(weights[:, None] * self.embeddings(flat), rows, batch)
        mean = sums / tf.maximum(totals, 1e-6)[:, None]
        if not self.lexical_dim:
            return mean
        return tf.concat(
            [
                (1.0 - self.lexical_weight) ** 0.5 * tf.math.l2_normalize(mean, axis=-1),
                self.lexical_weight**0.5 * tf.math.l2_normalize(self.lexical_sketch(ngrams, kept), axis=-1),
            ],
            axis=-1,
        )

    def lexical_sketch(self, ngrams: tf.RaggedTensor, kept: tf.Tensor | float = 1.0) -> tf.Tensor:
        """``[batch, lexical_dim]``: each distinct n-gram ``g`` (bucket id) of a text adds ``± v_g (1 + log tf)`` at
        ``g mod lexical_dim``, the sign from ``g // lexical_dim`` and ``tf`` its count in the text (of the occurrences
        ``kept``, the dropout mask: a sublinear TF-IDF bag, see the module docstring)."""
        flat, rows = ngrams.flat_values, ngrams.value_rowids()
        kept = tf.broadcast_to(tf.cast(kept, self.compute_dtype), tf.shape(flat))
        width = tf.cast(self.num_buckets + 1, tf.int64)
        pairs, pair_of_ngram = tf.unique(rows * width + tf.cast(flat, tf.int64))  # (text, bucket), once each
        counts = tf.math.unsorted_segment_sum(kept, pair_of_ngram, tf.size(pairs))
        term_frequency = tf.where(counts > 0, 1.0 + tf.math.log(tf.maximum(counts, 1.0)), 0.0)
        buckets, pair_rows = tf.cast(pairs % width, tf.int32), tf.cast(pairs // width, tf.int32)
        values = tf.nn.softplus(self.lexical_weights_per_bucket(buckets))[:, 0] * term_frequency
        signs = tf.cast(1 - 2 * ((buckets // self.lexical_dim) % 2), values.dtype)
        slots = pair_rows * self.lexical_dim + buckets % self.lexical_dim
        size = tf.cast(ngrams.nrows(), tf.int32) * self.lexical_dim
        return tf.reshape(tf.math.unsorted_segment_sum(signs * values, slots, size), [-1, self.lexical_dim])

    def adapt(self, texts: Iterable[str], batch_size: int = 1024) -> None:
        """Set each bucket's weight to the smoothed inverse document frequency ``log((1 + n) / (1 + df)) + 1`` of
        its n-grams in ``texts`` (buckets not seen get the weight of an n-gram seen once)."""
        texts = list(texts)
        document_frequency = np.zeros(self.num_buckets + 1, np.int64)
        for start in range(0, len(texts), batch_size):
            ids = self.ngram_ids(tf.constant(texts[start : start + batch_size]))
            pairs = np.stack([ids.value_rowids().numpy(), ids.flat_values.numpy()])
            np.add.at(document_frequency, np.unique(pairs, axis=1)[1], 1)  # once per (text, bucket)
        document_frequency[document_frequency == 0] = 1
        idf = np.log((1 + len(texts)) / (1 + document_frequency)) + 1.0
        # Stored through softplus: w = log(e^idf − 1).
        for table in self.weight_tables:
            table.embeddings.assign(np.log(np.expm1(idf))[:, None].astype("float32"))

    def compute_output_shape(
        self, input_shape: tuple[int | None, ...] | dict[str, tuple[int | None, ...]]
    ) -> tuple[int | None, ...]:
        batch_shape = input_shape["ngram_ids"][:1] if isinstance(input_shape, dict) else input_shape
        return (*batch_shape, self.output_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_buckets": self.num_buckets,
            "orders": list(self.orders),
            "embedding_dim": self.embedding_dim,
            "max_ngrams": self.max_ngrams,
            "dropout": self.dropout,
            "lexical_dim": self.lexical_dim,
            "lexical_weight": self.lexical_weight,
        }
