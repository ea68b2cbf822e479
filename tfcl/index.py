"""Nearest-neighbour indexes of L2-normalised vectors (cosine) in plain TensorFlow ops, so that they live inside a
SavedModel that stock TF Serving serves (no custom ops).

:class:`ExactIndex` scores every vector (one matrix product and ``tf.math.top_k``). :class:`IVFIndex` is an
inverted-file index: spherical k-means partitions the vectors into lists, stored one after another, and a query
scores the list centroids and then a fixed budget of ``candidates`` vectors: those of its nearest lists, read as
slices of the stored vectors (optionally first in fewer dimensions, then the best of them in full). Both answer
``search(queries [batch, d]) -> (positions [batch, k] int64, scores [batch, k])``, best first; positions index the
vectors the index was built from.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

INDEXES = ("exact", "ivf")
STORAGE = ("float32", "float16")  # the dtypes an IVF index keeps its vectors in
MISSING = -1  # the position of a padding place of the stored lists
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
    spherical k-means lists, stored one after another in blocks of ``block_size`` vectors (a list's last block is
    padded). A query scores the centroids, then a fixed budget of blocks: those of its nearest lists in order (the
    last list probed is cut where the budget ends), so that every query of a batch reads the same number of blocks,
    each a contiguous slice of the stored vectors.

    With ``scan_dims`` below ``d``, the candidates are scored in two stages: first by their projection on the
    ``scan_dims`` principal directions of the vectors (the top right-singular vectors of a sample, uncentred, so that
    projected dot products approximate cosines), then the best ``rerank`` of them by their full vectors.

    Args:
      vectors: ``[n, d]`` L2-normalised.
      k: answers per query, capped at ``n``.
      nlist: k-means lists; default ``4 * sqrt(n)``, at most ``n``; lists k-means leaves empty are not stored.
      candidates: vectors read per query (rounded up to whole blocks, padding included); default ``n / 64``;
        :meth:`set_candidates` changes it (a variable of the index, also once exported). Reading every block is
        exact search (without ``scan_dims``).
      block_size: vectors per block.
      scan_dims: dimensions of the first scoring stage; default ``d`` (one stage).
      rerank: candidates rescored by their full vectors, with ``scan_dims < d`` only; default ``10 * k``.
      iterations, sample_size, seed: of :func:`spherical_kmeans` (and of the sample of the principal directions).
      storage: the dtype the vectors of the first (or only) stage are kept and scored in: ``"float32"``, or
        ``"float16"`` (half the memory and of the bytes a query reads; scores to about 3 decimals); the full
        vectors that re-rank two-stage candidates stay float32.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        k: int,
        nlist: int | None = None,
        candidates: int | None = None,
        block_size: int = 32,
        scan_dims: int | None = None,
        rerank: int | None = None,
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
        self.block_size = block_size
        self.scan_dims = dims if scan_dims is None else scan_dims
        self.rerank = min(10 * self.k if rerank is None else rerank, n) if self.scan_dims < dims else self.k
        if self.nlist < 1 or block_size < 1 or not 1 <= self.scan_dims <= dims or self.rerank < self.k:
            raise ValueError(
                f"nlist and block_size must be positive, scan_dims in [1, {dims}] and rerank at least k = {self.k}, "
                f"got {nlist}, {block_size}, {scan_dims}, {rerank}"
            )
        if rerank is not None and self.scan_dims == dims:
            raise ValueError(f"rerank applies to two-stage scoring (scan_dims below {dims}), got scan_dims {scan_dims}")
        if storage not in STORAGE:
            raise ValueError(f"storage must be one of {STORAGE}, got {storage!r}")
        centroids = spherical_kmeans(vectors, self.nlist, iterations, sample_size, seed)
        assigned = nearest_centroids(vectors, centroids)
        sizes = np.bincount(assigned, minlength=self.nlist)
        kept = sizes > 0
        sizes, centroids = sizes[kept], centroids[kept]
        assigned = np.cumsum(kept)[assigned] - 1  # among the kept lists
        self.list_blocks = -(-sizes // block_size)
        self.blocks = int(self.list_blocks.sum())
        first_block = np.cumsum(self.list_blocks) - self.list_blocks
        # The place of each vector: its list's first block, then its rank within the list.
        order = np.argsort(assigned, kind="stable")
        rank_in_list = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        slot = np.repeat(first_block, sizes) * block_size + rank_in_list
        positions = np.full(self.blocks * block_size, MISSING, np.int64)
        positions[slot] = order
        stored = np.zeros([self.blocks * block_size, dims], np.float32)
        stored[slot] = vectors[order]
        fill = np.bincount(slot // block_size, minlength=self.blocks)
        self.centroids = tf.Variable(centroids, trainable=False, name="centroids")
        self.first_block = tf.Variable(first_block, dtype=tf.int32, trainable=False, name="first_block")
        self.blocks_per_list = tf.Variable(self.list_blocks, dtype=tf.int32, trainable=False, name="blocks_per_list")
        self.block_fill = tf.Variable(fill, dtype=tf.int32, trainable=False, name="block_fill")
        self.lists = tf.Variable(
            stored.reshape(self.blocks, block_size, dims).astype(storage if self.scan_dims == dims else "float32"),
            trainable=False,
            name="lists",
        )
        self.positions = tf.Variable(positions.reshape(self.blocks, block_size), trainable=False, name="positions")
        if self.scan_dims < dims:
            directions = principal_directions(vectors, self.scan_dims, sample_size or 32 * self.nlist, seed)
            self.projection = tf.Variable(directions, trainable=False, name="projection")
            scanned = (stored @ directions).reshape(self.blocks, block_size, self.scan_dims).astype(storage)
            self.scanned = tf.Variable(scanned, trainable=False, name="scanned")
        self.candidate_blocks = tf.Variable(0, trainable=False, name="candidate_blocks")
        self.probes = tf.Variable(0, trainable=False, name="probes")
        self.set_candidates(math.ceil(n / 64) if candidates is None else candidates)

    def set_candidates(self, candidates: int) -> int:
        """Read ``candidates`` vectors per query from now on, in whole blocks (at least ``rerank`` blocks, each
        holding a vector at least, at most all); returns the vectors read, padding included."""
        if candidates < 1:
            raise ValueError(f"candidates must be positive, got {candidates}")
        blocks = min(max(math.ceil(candidates / self.block_size), self.rerank), self.blocks)
        # Enough lists to fill the budget whichever lists are nearest: as many as the smallest lists that fill it.
        needed = int(np.searchsorted(np.cumsum(np.sort(self.list_blocks)), blocks)) + 1
        self.probes.assign(min(needed, len(self.list_blocks)))
        self.candidate_blocks.assign(blocks)
        return blocks * self.block_size

    @tf.function(input_signature=[QUERIES])
    def search(self, queries: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(positions [batch, k] int64, scores [batch, k])``, best first, among each query's candidates."""
        batch = tf.shape(queries)[0]
        probed = tf.math.top_k(tf.matmul(queries, self.centroids, transpose_b=True), k=self.probes).indices
        counts = tf.gather(self.blocks_per_list, probed)  # [batch, probes], nearest list first
        ends = tf.cumsum(counts, axis=1)
        places = tf.broadcast_to(tf.range(self.candidate_blocks)[None], [batch, self.candidate_blocks])
        probe = tf.searchsorted(ends, places, side="right")  # [batch, candidate blocks]: the list of each place
        offsets = tf.gather(self.first_block, probed) - (ends - counts)  # block - place, per probed list
        blocks = places + tf.gather(offsets, probe, batch_dims=1)  # [batch, candidate blocks]
        rows = tf.reshape(blocks[:, :, None] * self.block_size + tf.range(self.block_size), [batch, -1])
        filled = tf.reshape(tf.range(self.block_size) < tf.gather(self.block_fill, blocks)[:, :, None], [batch, -1])
        if self.scan_dims < self.lists.shape[-1]:
            scores = scored(tf.matmul(queries, self.projection), self.scanned, blocks, filled)
            rows = tf.gather(rows, tf.math.top_k(scores, k=self.rerank).indices, batch_dims=1)
            vectors = tf.gather(tf.reshape(self.lists, [-1, self.lists.shape[-1]]), rows)  # [batch, rerank, d]
            scores = tf.cast(tf.einsum("bd,brd->br", tf.cast(queries, vectors.dtype), vectors), tf.float32)
        else:
            scores = scored(queries, self.lists, blocks, filled)
        top = tf.math.top_k(scores, k=self.k)
        return tf.gather(tf.reshape(self.positions, [-1]), tf.gather(rows, top.indices, batch_dims=1)), top.values


def scored(queries: tf.Tensor, stored: tf.Variable, blocks: tf.Tensor, filled: tf.Tensor) -> tf.Tensor:
    """``[batch, blocks * block_size]`` float32 dot products of each query with the vectors of its ``blocks``
    (``[batch, blocks]`` of ``stored``, ``[blocks, block_size, dims]``); ``-inf`` where not ``filled``."""
    products = tf.einsum("bd,bpsd->bps", tf.cast(queries, stored.dtype), tf.gather(stored, blocks))
    products = tf.reshape(tf.cast(products, tf.float32), tf.shape(filled))
    return tf.where(filled, products, tf.constant(-np.inf, tf.float32))


def principal_directions(vectors: np.ndarray, dims: int, sample_size: int, seed: int = 0) -> np.ndarray:
    """``[d, dims]`` orthonormal columns: the top right-singular vectors of a random sample of ``vectors`` rows
    (uncentred), so that dot products of projections approximate those of the vectors."""
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(len(vectors), min(len(vectors), sample_size), replace=False)]
    return np.linalg.svd(sample, full_matrices=False)[2][:dims].T.astype(np.float32)


def listed_vectors(lists: np.ndarray, positions: np.ndarray, count: int) -> np.ndarray:
    """``[count, d]`` float32: the vectors an :class:`IVFIndex` keeps in its ``lists`` (``[blocks, block_size, d]``),
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
