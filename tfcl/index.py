"""Nearest-neighbour indexes of L2-normalised vectors (cosine) in plain TensorFlow ops, so that they live inside a
SavedModel that stock TF Serving serves (no custom ops).

:class:`ExactIndex` scores every vector (one matrix product and ``tf.math.top_k``). :class:`IVFIndex` is an
inverted-file index: spherical k-means partitions the vectors into lists, a query scores the list centroids and
then, exactly, only the vectors of the nearest lists (``nprobe`` blocks of them). Lists are cut into blocks of at most
``list_size`` vectors (a long list is several blocks under the same centroid), stored as a padded
``[blocks, list_size, d]`` tensor, so that a batch of queries gathers whole blocks and scores them in one batched
product. Both answer ``search(queries [batch, d]) -> (positions [batch, k] int64, scores [batch, k])``, best first;
positions index the vectors the index was built from. Where fewer than ``k`` vectors were scored (small probed
lists), the missing places hold position ``-1`` and score ``-inf``.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

INDEXES = ("exact", "ivf")
MISSING = -1  # the position of a place in the answer no vector filled
STORAGE = ("float32", "float16")  # the dtypes an IVF index keeps its vectors in
QUERIES = tf.TensorSpec([None, None], tf.float32, name="queries")  # [batch, d], L2-normalised


def l2_normalised(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as float32 rows of unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def checked_vectors(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as a float32 ``[n, d]`` array, or a ``ValueError`` saying why it cannot be indexed."""
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"expects a non-empty [n, d] matrix of vectors, got shape {vectors.shape}")
    return vectors


class ExactIndex(tf.Module):
    """Exact top-``k`` by cosine over ``vectors`` (``[n, d]``, L2-normalised); ``k`` is capped at ``n``."""

    def __init__(self, vectors: np.ndarray, k: int, name: str = "exact_index") -> None:
        super().__init__(name=name)
        vectors = checked_vectors(vectors)
        self.k = min(k, len(vectors))
        self.vectors = tf.Variable(vectors, trainable=False, name="vectors")

    @tf.function(input_signature=[QUERIES])
    def scores(self, queries: tf.Tensor) -> tf.Tensor:
        """``[batch, n]`` cosine of each query with every vector."""
        return tf.matmul(queries, self.vectors, transpose_b=True)

    @tf.function(input_signature=[QUERIES])
    def search(self, queries: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(positions [batch, k] int64, scores [batch, k])``, best first."""
        top = tf.math.top_k(self.scores(queries), k=self.k)
        return tf.cast(top.indices, tf.int64), top.values


def spherical_kmeans(
    vectors: np.ndarray, clusters: int, iterations: int = 10, sample_size: int | None = None, seed: int = 0
) -> np.ndarray:
    """``[clusters, d]`` unit centroids of Lloyd's iterations on cosine over a random sample of ``vectors``
    (unit rows) of ``sample_size`` rows (default ``32 * clusters``; at most all); a centroid left without members
    restarts at a random sample row."""
    rng = np.random.default_rng(seed)
    sample_size = min(len(vectors), max(sample_size or 32 * clusters, clusters))
    sample = vectors[rng.choice(len(vectors), sample_size, replace=False)]
    centroids = sample[rng.choice(len(sample), clusters, replace=False)]
    for _ in range(iterations):
        assigned = nearest_centroids(sample, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assigned, sample)
        empty = np.bincount(assigned, minlength=clusters) == 0
        sums[empty] = sample[rng.choice(len(sample), int(empty.sum()), replace=False)]
        centroids = l2_normalised(sums)
    return centroids


def nearest_centroids(vectors: np.ndarray, centroids: np.ndarray, chunk: int = 32768) -> np.ndarray:
    """``[n]`` the index of each vector's nearest centroid by cosine, in chunks (bounded memory)."""
    return np.concatenate(
        [np.argmax(vectors[start : start + chunk] @ centroids.T, axis=1) for start in range(0, len(vectors), chunk)]
    )


class IVFIndex(tf.Module):
    """Approximate top-``k`` by cosine over ``vectors`` (``[n, d]``, L2-normalised): an inverted file of ``nlist``
    spherical k-means lists, searched by scoring exactly the vectors of the ``nprobe`` blocks whose centroids are
    nearest to the query.

    Args:
      vectors: ``[n, d]`` L2-normalised.
      k: answers per query, capped at ``n``.
      nlist: k-means lists; default ``4 * sqrt(n)``, at most ``n``.
      nprobe: blocks scored per query (a block is at most ``list_size`` vectors of one list); default
        ``nlist // 64``; :meth:`set_nprobe` changes it (a variable of the index, also once exported).
        ``nprobe`` = the number of blocks is exact search.
      list_size: the block size; default the mean list size ``ceil(n / nlist)``.
      iterations, sample_size, seed: of :func:`spherical_kmeans`.
      storage: the dtype the listed vectors are kept and scored in: ``"float32"``, or ``"float16"`` (half the
        memory and of the bytes a query reads; scores to about 3 decimals).
    """

    def __init__(
        self,
        vectors: np.ndarray,
        k: int,
        nlist: int | None = None,
        nprobe: int | None = None,
        list_size: int | None = None,
        iterations: int = 10,
        sample_size: int | None = None,
        seed: int = 0,
        storage: str = "float32",
        name: str = "ivf_index",
    ) -> None:
        super().__init__(name=name)
        vectors = checked_vectors(vectors)
        n, dims = vectors.shape
        self.k = min(k, n)
        self.nlist = min(max(1, round(4 * math.sqrt(n))) if nlist is None else nlist, n)
        if self.nlist < 1 or (list_size is not None and list_size < 1):
            raise ValueError(f"nlist and list_size must be positive, got {nlist}, {list_size}")
        if storage not in STORAGE:
            raise ValueError(f"storage must be one of {STORAGE}, got {storage!r}")
        self.list_size = list_size or math.ceil(n / self.nlist)
        centroids = spherical_kmeans(vectors, self.nlist, iterations, sample_size, seed)
        assigned = nearest_centroids(vectors, centroids)
        order = np.argsort(assigned, kind="stable")
        sizes = np.bincount(assigned, minlength=self.nlist)
        blocks_per_list = -(-sizes // self.list_size)  # an empty list has no block
        block_list = np.repeat(np.arange(self.nlist), blocks_per_list)
        self.blocks = len(block_list)
        # The place of each sorted vector: its list's first block, then its rank within the list.
        list_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rank_in_list = np.arange(n) - np.repeat(list_starts, sizes)
        first_block = np.concatenate([[0], np.cumsum(blocks_per_list)[:-1]])
        slot = np.repeat(first_block, sizes) * self.list_size + rank_in_list
        stored = np.zeros([self.blocks * self.list_size, dims], np.float32)
        stored[slot] = vectors[order]
        positions = np.full([self.blocks * self.list_size], MISSING, np.int64)
        positions[slot] = order
        self.centroids = tf.Variable(centroids[block_list], trainable=False, name="centroids")
        self.lists = tf.Variable(
            stored.reshape(self.blocks, self.list_size, dims).astype(storage), trainable=False, name="lists"
        )
        self.positions = tf.Variable(positions.reshape(self.blocks, self.list_size), trainable=False, name="positions")
        self.nprobe = tf.Variable(0, trainable=False, name="nprobe")
        self.set_nprobe(max(1, self.nlist // 64) if nprobe is None else nprobe)

    def set_nprobe(self, nprobe: int) -> int:
        """Probe ``nprobe`` blocks per query from now on (raised to hold ``k`` vectors, capped at the number of
        blocks); returns the number set."""
        if nprobe < 1:
            raise ValueError(f"nprobe must be positive, got {nprobe}")
        nprobe = min(max(nprobe, math.ceil(self.k / self.list_size)), self.blocks)
        self.nprobe.assign(nprobe)
        return nprobe

    @tf.function(input_signature=[QUERIES])
    def search(self, queries: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(positions [batch, k] int64, scores [batch, k])``, best first, among the vectors of the probed blocks."""
        probed = tf.math.top_k(tf.matmul(queries, self.centroids, transpose_b=True), k=self.nprobe).indices
        candidates = tf.gather(self.lists, probed)  # [batch, nprobe, list_size, d]
        positions = tf.reshape(tf.gather(self.positions, probed), [tf.shape(queries)[0], -1])
        scores = tf.einsum("bd,bpsd->bps", tf.cast(queries, self.lists.dtype), candidates)
        scores = tf.reshape(tf.cast(scores, tf.float32), tf.shape(positions))
        scores = tf.where(positions == MISSING, tf.constant(-np.inf, tf.float32), scores)
        top = tf.math.top_k(scores, k=tf.minimum(self.k, self.nprobe * self.list_size))
        found = tf.where(tf.math.is_finite(top.values), tf.gather(positions, top.indices, batch_dims=1), MISSING)
        missing = [[0, 0], [0, self.k - tf.shape(found)[1]]]
        return (
            tf.ensure_shape(tf.pad(found, missing, constant_values=MISSING), [None, self.k]),
            tf.ensure_shape(tf.pad(top.values, missing, constant_values=-np.inf), [None, self.k]),
        )


def listed_vectors(lists: np.ndarray, positions: np.ndarray, count: int) -> np.ndarray:
    """``[count, d]`` float32: the vectors an :class:`IVFIndex` keeps in its ``lists`` (``[blocks, list_size, d]``),
    back in their original order by ``positions`` (padding places hold :data:`MISSING`)."""
    positions = positions.ravel()
    lists = lists.reshape(len(positions), -1).astype(np.float32)
    vectors = np.zeros([count, lists.shape[1]], np.float32)
    vectors[positions[positions != MISSING]] = lists[positions != MISSING]
    return vectors


def build_index(kind: str, vectors: np.ndarray, k: int, **options: int | str) -> ExactIndex | IVFIndex:
    """An index of ``vectors`` of ``kind`` (:data:`INDEXES`); ``options`` go to :class:`IVFIndex`."""
    if kind not in INDEXES:
        raise ValueError(f"index must be one of {INDEXES}, got {kind!r}")
    if kind == "exact":
        if options:
            raise ValueError(f"the exact index takes no options, got {sorted(options)}")
        return ExactIndex(vectors, k)
    return IVFIndex(vectors, k, **options)
