"""Nearest-neighbour indexes in TF ops: the IVF index against exact search, its padding, and its SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from tfcl.index import MISSING, ExactIndex, IVFIndex, build_index, l2_normalised

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


def test_probing_every_block_is_exact_search(vectors, queries):
    exact = ExactIndex(vectors, K)
    exact_positions, exact_scores = exact.search(queries)
    ivf = IVFIndex(vectors, K, nlist=30)
    ivf.set_nprobe(ivf.blocks)
    positions, scores = ivf.search(queries)
    np.testing.assert_allclose(scores.numpy(), exact_scores.numpy(), atol=1e-5)
    np.testing.assert_array_equal(positions.numpy(), exact_positions.numpy())


def test_float16_lists_score_to_about_three_decimals(vectors, queries):
    exact = ExactIndex(vectors, K)
    ivf = IVFIndex(vectors, K, nlist=30, storage="float16")
    ivf.set_nprobe(ivf.blocks)
    (_, exact_scores), (_, scores) = exact.search(queries), ivf.search(queries)
    assert ivf.lists.dtype == tf.float16
    np.testing.assert_allclose(scores.numpy(), exact_scores.numpy(), atol=2e-3)


def test_recall_on_clustered_vectors(vectors, queries):
    """Queries come from the same 20 tight clusters: their neighbours share their cluster, which k-means with 20
    lists puts in a list whose centroid is the query's nearest; probing 3 blocks of the mean list size leaves
    room for a cluster split across blocks (or lists), so at least 9 of the exact 10 are found on average."""
    exact, ivf = ExactIndex(vectors, K), IVFIndex(vectors, K, nlist=20, nprobe=3)
    (truth, _), (positions, _) = exact.search(queries), ivf.search(queries)
    found = [len(np.intersect1d(a, b)) for a, b in zip(positions.numpy(), truth.numpy())]
    assert np.mean(found) / K >= 0.9


def test_scores_are_cosines_of_the_positions_best_first(vectors, queries):
    ivf = IVFIndex(vectors, K, nlist=40, nprobe=2)
    positions, scores = ivf.search(queries)
    cosines = np.take_along_axis(queries.numpy() @ vectors.T, positions.numpy(), axis=1)
    np.testing.assert_allclose(scores.numpy(), cosines, atol=1e-5)
    assert np.all(np.diff(scores.numpy(), axis=1) <= 1e-6)


def test_fewer_candidates_than_k_leave_places_missing(vectors, queries):
    """Blocks of 2 vectors, probed as few as hold k: lists of odd size leave padded places, answered ``-1``."""
    ivf = IVFIndex(vectors[:50], K, nlist=25, list_size=2, nprobe=1)
    assert ivf.nprobe.numpy() == K // 2  # raised to hold k vectors
    positions, scores = (tensor.numpy() for tensor in ivf.search(queries))
    assert positions.shape == scores.shape == (64, K)
    missing = positions == MISSING
    assert missing.any()
    np.testing.assert_array_equal(np.isneginf(scores), missing)
    for row, row_missing in zip(positions, missing):
        assert len(set(row[~row_missing])) == (~row_missing).sum()
    assert ExactIndex(vectors[:5], K).k == IVFIndex(vectors[:5], K).k == 5  # k capped at the number of vectors


def test_empty_lists_get_no_block():
    """Three distinct vectors, ten lists: k-means leaves lists without members; they hold no block."""
    vectors = np.repeat(l2_normalised(np.eye(3, 8)), 10, axis=0)
    ivf = IVFIndex(vectors, K, nlist=10)
    assert ivf.blocks == 3 * 4  # three lists of 10 in blocks of ceil(30 / 10) = 3
    ivf.set_nprobe(ivf.blocks)
    _, scores = ivf.search(tf.constant(vectors[:1]))
    np.testing.assert_allclose(scores.numpy(), [[1.0] * K], atol=1e-6)


def test_saved_model_answers_as_in_process(vectors, queries, tmp_path):
    ivf = IVFIndex(vectors, K, nlist=30, nprobe=2)
    tf.saved_model.save(ivf, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    for got, expected in zip(loaded.search(queries), ivf.search(queries)):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "kind, vectors, options, message",
    [
        ("hnsw", np.eye(4), {}, "index must be one of"),
        ("exact", np.eye(4), {"nprobe": 2}, "takes no options"),
        ("ivf", np.zeros([0, 4]), {}, "non-empty"),
        ("ivf", np.eye(4), {"nprobe": 0}, "nprobe must be positive"),
        ("ivf", np.eye(4), {"list_size": 0}, "must be positive"),
        ("ivf", np.eye(4), {"nlist": 0}, "must be positive"),
        ("ivf", np.eye(4), {"storage": "int8"}, "storage must be one of"),
    ],
)
def test_bad_arguments_are_refused(kind, vectors, options, message):
    with pytest.raises(ValueError, match=message):
        build_index(kind, vectors, K, **options)
