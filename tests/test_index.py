"""Nearest-neighbour indexes in TF ops: the IVF index against exact search, its padding, and its SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from tfcl.index import MISSING, ExactIndex, IVFIndex, build_index, l2_normalised, listed_vectors

K = 10


def clustered(count: int, clusters: int, spread: float, dims: int = 16, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``clusters`` random unit centres (Gaussian offsets of scale ``spread`` per dimension)."""
    rng = np.random.default_rng(seed)
    centres = l2_normalised(rng.normal(size=(clusters, dims)))
    return l2_normalised(centres[rng.integers(clusters, size=count)] + spread * rng.normal(size=(count, dims)))


@pytest.fixture(scope="module")
def mixture() -> np.ndarray:
    return clustered(2064, clusters=20, spread=0.05)


@pytest.fixture(scope="module")
def vectors(mixture) -> np.ndarray:
    return mixture[:2000]


@pytest.fixture(scope="module")
def queries(mixture) -> tf.Tensor:
    """Further draws of the same mixture, not in the index."""
    return tf.constant(mixture[2000:])


def test_reading_every_block_is_exact_search(vectors, queries):
    exact = ExactIndex(vectors, K)
    exact_positions, exact_scores = exact.search(queries)
    ivf = IVFIndex(vectors, K, nlist=30)
    assert ivf.set_candidates(ivf.blocks * ivf.block_size) == ivf.blocks * ivf.block_size  # every block
    positions, scores = ivf.search(queries)
    np.testing.assert_allclose(scores.numpy(), exact_scores.numpy(), atol=1e-5)
    np.testing.assert_array_equal(positions.numpy(), exact_positions.numpy())


def test_float16_lists_score_to_about_three_decimals(vectors, queries):
    exact = ExactIndex(vectors, K)
    ivf = IVFIndex(vectors, K, nlist=30, storage="float16")
    ivf.set_candidates(ivf.blocks * ivf.block_size)
    (_, exact_scores), (_, scores) = exact.search(queries), ivf.search(queries)
    assert ivf.lists.dtype == tf.float16
    np.testing.assert_allclose(scores.numpy(), exact_scores.numpy(), atol=2e-3)


def recall(positions: tf.Tensor, truth: tf.Tensor) -> float:
    return np.mean([len(np.intersect1d(a, b)) for a, b in zip(positions.numpy(), truth.numpy())]) / K


def test_recall_on_clustered_vectors(vectors, queries):
    """Queries come from the same 20 tight clusters of about 100 vectors: their neighbours share their cluster,
    which k-means with 20 lists puts in a list whose centroid is the query's nearest; reading 200 vectors leaves
    room for a cluster split across lists, so at least 9 of the exact 10 are found on average."""
    exact, ivf = ExactIndex(vectors, K), IVFIndex(vectors, K, nlist=20, candidates=200)
    assert recall(ivf.search(queries)[0], exact.search(queries)[0]) >= 0.9


def test_two_stage_scoring_ranks_by_the_full_vectors():
    """Vectors near a 6-dim subspace of 16 dims: the first stage's 6 principal directions (in float16) keep the
    neighbours among the best ``rerank`` candidates, and the answers are scored by the full float32 vectors (their
    exact cosines)."""
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(16, 6)))[0].T
    mixture = l2_normalised(rng.normal(size=(2064, 6)) @ basis + 0.02 * rng.normal(size=(2064, 16)))
    vectors, queries = mixture[:2000], tf.constant(mixture[2000:])
    exact = ExactIndex(vectors, K)
    ivf = IVFIndex(vectors, K, nlist=30, candidates=len(vectors), scan_dims=6, rerank=5 * K, storage="float16")
    assert ivf.scanned.shape == (ivf.blocks, ivf.block_size, 6)
    assert (ivf.scanned.dtype, ivf.lists.dtype) == (tf.float16, tf.float32)
    positions, scores = ivf.search(queries)
    cosines = np.take_along_axis(queries.numpy() @ vectors.T, positions.numpy(), axis=1)
    np.testing.assert_allclose(scores.numpy(), cosines, atol=1e-5)
    assert recall(positions, exact.search(queries)[0]) >= 0.95


def test_scores_are_cosines_of_the_positions_best_first(vectors, queries):
    ivf = IVFIndex(vectors, K, nlist=40, candidates=100)
    positions, scores = ivf.search(queries)
    cosines = np.take_along_axis(queries.numpy() @ vectors.T, positions.numpy(), axis=1)
    np.testing.assert_allclose(scores.numpy(), cosines, atol=1e-5)
    assert np.all(np.diff(scores.numpy(), axis=1) <= 1e-6)


def test_padding_never_answers(vectors, queries):
    """25 lists of about 2 vectors in blocks of 4: most blocks are half padding; a budget below k is raised to k
    blocks (each holds a vector at least), so every place of the answer is a distinct indexed vector."""
    ivf = IVFIndex(vectors[:50], K, nlist=25, block_size=4, candidates=1)
    assert ivf.candidate_blocks.numpy() == K
    assert (ivf.positions.numpy() == MISSING).any()
    positions, scores = (tensor.numpy() for tensor in ivf.search(queries))
    assert positions.shape == scores.shape == (64, K)
    assert np.isfinite(scores).all() and ((positions >= 0) & (positions < 50)).all()
    assert all(len(set(row)) == K for row in positions)
    assert ExactIndex(vectors[:5], K).k == IVFIndex(vectors[:5], K).k == 5  # k capped at the number of vectors


def test_empty_lists_are_not_stored():
    """Three distinct vectors, ten lists: k-means leaves lists without members; only the three others are kept."""
    vectors = np.repeat(l2_normalised(np.eye(3, 8)), 10, axis=0)
    ivf = IVFIndex(vectors, K, nlist=10, block_size=4)
    assert ivf.centroids.shape[0] == 3 and ivf.blocks == 3 * 3  # three lists of 10 in blocks of 4
    ivf.set_candidates(ivf.blocks * ivf.block_size)
    _, scores = ivf.search(tf.constant(vectors[:1]))
    np.testing.assert_allclose(scores.numpy(), [[1.0] * K], atol=1e-6)


def test_listed_vectors_are_the_indexed_ones(vectors):
    ivf = IVFIndex(vectors, K, nlist=30, block_size=16)
    listed = listed_vectors(ivf.lists.numpy(), ivf.positions.numpy(), len(vectors))
    np.testing.assert_array_equal(listed, vectors)


@pytest.mark.parametrize("options", [{"nlist": 30, "candidates": 200}, {"nlist": 30, "scan_dims": 8}])
def test_saved_model_answers_as_in_process(vectors, queries, tmp_path, options):
    ivf = IVFIndex(vectors, K, **options)
    tf.saved_model.save(ivf, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    for got, expected in zip(loaded.search(queries), ivf.search(queries)):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "kind, vectors, options, message",
    [
        ("hnsw", np.eye(4), {}, "index must be one of"),
        ("exact", np.eye(4), {"candidates": 2}, "takes no options"),
        ("ivf", np.zeros([0, 4]), {}, "non-empty"),
        ("ivf", np.eye(4), {"candidates": 0}, "candidates must be positive"),
        ("ivf", np.eye(4), {"block_size": 0}, "must be positive"),
        ("ivf", np.eye(4), {"scan_dims": 5}, "scan_dims in"),
        ("ivf", np.eye(4), {"scan_dims": 2, "rerank": 1}, "rerank at least"),
        ("ivf", np.eye(4), {"rerank": 20}, "rerank applies to two-stage"),
        ("ivf", np.eye(4), {"nlist": 0}, "must be positive"),
        ("ivf", np.eye(4), {"storage": "int8"}, "storage must be one of"),
    ],
)
def test_bad_arguments_are_refused(kind, vectors, options, message):
    with pytest.raises(ValueError, match=message):
        build_index(kind, vectors, K, **options)
