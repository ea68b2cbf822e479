"""博文预测话题 / 找相似博文: exact top-k against brute force, the exported SavedModel against the Python apps."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from text_helpers import POSTS, TOPICS, tiny_cdtom

from tfcl.apps import SimilarPosts, TopicPredictor, export_weibo_model
from tfcl.apps.weibo import served_post_index

DOCUMENTS = [document for document, _ in POSTS]
POST_IDS = [f"448000000000{index:04d}" for index in range(len(POSTS))]
K = 7  # more than the 6 topics, fewer than the 8 posts
QUERIES = ["篮球比赛真精彩", "猫咪😂[哈哈] http://t.cn/A6abc", DOCUMENTS[2]]


@pytest.fixture(scope="module")
def model():
    return tiny_cdtom()


@pytest.fixture(scope="module")
def predictor(model):
    return TopicPredictor(model, TOPICS, k=K)


@pytest.fixture(scope="module")
def index(model):
    return SimilarPosts(model, POST_IDS, DOCUMENTS, k=K)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("weibo") / "model"
    export_weibo_model(model, TOPICS, POST_IDS, DOCUMENTS, path, k=K)
    return path, tf.saved_model.load(str(path))


def test_topic_predictor_is_exact_top_k_of_topic_cosines(model, predictor):
    topics, scores = predictor(QUERIES)
    assert topics.shape == scores.shape == (len(QUERIES), len(TOPICS))  # k capped at the vocabulary size
    cosines = model.embed_documents(tf.constant(QUERIES)).numpy() @ model.embed_topics(tf.constant(TOPICS)).numpy().T
    ranking = np.argsort(-cosines, axis=1)
    np.testing.assert_array_equal(topics, np.array(TOPICS)[ranking])
    np.testing.assert_allclose(scores, np.take_along_axis(cosines, ranking, axis=1), atol=1e-5)
    np.testing.assert_allclose(predictor.score(QUERIES).numpy(), cosines, atol=1e-5)


@pytest.mark.parametrize("index", ["centroid", "combined"])
def test_topic_keys_are_centroids_of_the_documents_carrying_the_topic(model, index):
    posts = POSTS[:5]  # no post carries 每日打卡: its key stays its name embedding
    predictor = TopicPredictor(
        model,
        TOPICS,
        k=K,
        index=index,
        documents=[document for document, _ in posts],
        document_topics=[topics for _, topics in posts],
    )
    documents = model.embed_documents(tf.constant([document for document, _ in posts])).numpy()
    names = model.embed_topics(tf.constant(TOPICS)).numpy()
    keys = []
    for name, topic in zip(names, TOPICS):
        carrying = [row for row, (_, topics) in enumerate(posts) if topic in topics]
        centroid = unit(documents[carrying].mean(axis=0)) if carrying else name
        keys.append(centroid if index == "centroid" or not carrying else unit(centroid + name))
    np.testing.assert_allclose(predictor.embeddings.numpy(), np.array(keys), atol=1e-5)
    np.testing.assert_allclose(
        predictor.embeddings.numpy()[TOPICS.index("每日打卡")], names[TOPICS.index("每日打卡")], atol=1e-6
    )
    np.testing.assert_allclose(
        predictor.score(QUERIES).numpy(),
        model.embed_documents(tf.constant(QUERIES)).numpy() @ np.array(keys).T,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="index must be one of"):
        TopicPredictor(model, TOPICS, index="nearest", documents=DOCUMENTS, document_topics=[t for _, t in POSTS])


NEW_TOPICS = ["篮球比赛", "宠物猫狗", "火箭卫星", "喝水养生"]  # names outside the vocabulary, and one inside it


def test_rank_topics_scores_caller_names_like_the_name_keys(model, predictor):
    answer = predictor.rank_topics(tf.constant(QUERIES), tf.constant(NEW_TOPICS))
    assert answer["indices"].shape == (len(QUERIES), len(NEW_TOPICS))  # K capped at the names given
    # The name keys of a predictor built for those names are what rank_topics scores against.
    name_keys = TopicPredictor(model, NEW_TOPICS, k=K)
    np.testing.assert_allclose(answer["scores"].numpy(), name_keys.score(tf.constant(QUERIES)).numpy(), atol=1e-5)
    names, scores = name_keys(QUERIES)
    np.testing.assert_array_equal(np.char.decode(answer["topics"].numpy().astype(np.bytes_), "utf-8"), names)
    np.testing.assert_allclose(
        np.take_along_axis(answer["scores"].numpy(), answer["indices"].numpy(), 1), scores, atol=1e-5
    )
    cosines = (
        model.embed_documents(tf.constant(QUERIES)).numpy() @ model.embed_topics(tf.constant(NEW_TOPICS)).numpy().T
    )
    np.testing.assert_array_equal(answer["indices"].numpy(), np.argsort(-cosines, axis=1))


def test_rank_topics_caps_k_at_the_topics_given_and_refuses_none(model, predictor):
    answer = predictor.rank_topics(tf.constant(QUERIES), tf.constant(NEW_TOPICS[:2]))
    assert answer["scores"].shape == answer["indices"].shape == answer["topics"].shape == (len(QUERIES), 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-empty list of topic names"):
        predictor.rank_topics(tf.constant(QUERIES), tf.constant([], tf.string))
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-empty batch of post texts"):
        predictor.rank_topics(tf.constant([], tf.string), tf.constant(NEW_TOPICS))


def unit(vector):
    return vector / np.linalg.norm(vector)


def test_similar_posts_finds_an_indexed_post_first(index):
    post_ids, scores = index(DOCUMENTS)
    assert post_ids.shape == (len(DOCUMENTS), K)
    assert list(post_ids[:, 0]) == POST_IDS
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_similar_posts_from_an_ivf_index_reading_every_block_are_exact(model, index):
    ivf = SimilarPosts(model, POST_IDS, DOCUMENTS, k=K, index="ivf", nlist=3)
    ivf.index.set_candidates(ivf.index.blocks * ivf.index.block_size)
    (post_ids, scores), (exact_ids, exact_scores) = ivf(QUERIES), index(QUERIES)
    np.testing.assert_array_equal(post_ids, exact_ids)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)


def test_similar_posts_from_a_small_ivf_budget_are_distinct_indexed_posts(model):
    """8 posts in 4 lists cut into blocks of 3: the budget of 1 vector is raised to k = 7 blocks, padding
    included, which hold 7 posts at least: every place of the answer is a distinct indexed post."""
    ivf = SimilarPosts(model, POST_IDS, DOCUMENTS, k=K, index="ivf", nlist=4, candidates=1, block_size=3)
    post_ids, scores = ivf(QUERIES)
    assert post_ids.shape == scores.shape == (len(QUERIES), K)
    assert np.isfinite(scores).all()
    for row in post_ids:
        assert len(set(row)) == K and set(row) <= set(POST_IDS)


@pytest.mark.slow  # export and load trace the tokenizer and BERT graph several times: ~1.5 min on 2 busy cores
def test_exported_ivf_post_index_answers_like_in_process(model, tmp_path):
    options = {"nlist": 3, "candidates": 1, "scan_dims": 4}
    path = str(tmp_path / "model")
    export_weibo_model(model, TOPICS, POST_IDS, DOCUMENTS, path, k=K, post_index="ivf", post_index_options=options)
    post_ids, scores = SimilarPosts(model, POST_IDS, DOCUMENTS, k=K, index="ivf", **options)(QUERIES)
    answer = tf.saved_model.load(path).signatures["similar_posts"](texts=tf.constant(QUERIES))
    np.testing.assert_array_equal(answer["post_ids"].numpy().astype(str), post_ids)
    np.testing.assert_allclose(answer["scores"].numpy(), scores, atol=1e-5)
    served_ids, embeddings = served_post_index(path)  # read back from the IVF lists, in the index's order
    assert served_ids == POST_IDS
    np.testing.assert_allclose(embeddings, SimilarPosts(model, POST_IDS, DOCUMENTS, k=K).embeddings.numpy(), atol=1e-6)


@pytest.mark.slow  # export and load trace the tokenizer and BERT graph several times: ~1.5 min on 2 busy cores
def test_exported_signatures_answer_like_the_python_apps(model, predictor, index, exported):
    _, loaded = exported
    assert set(loaded.signatures) == {"serving_default", "predict_topics", "embed_post", "similar_posts", "rank_topics"}
    texts = tf.constant(QUERIES)
    topics, scores = predictor(QUERIES)
    for name in ("predict_topics", "serving_default"):
        answer = loaded.signatures[name](texts=texts)
        np.testing.assert_array_equal(answer["topics"].numpy().astype(bytes), np.char.encode(topics, "utf-8"))
        np.testing.assert_allclose(answer["scores"].numpy(), scores, atol=1e-5)
    post_ids, scores = index(QUERIES)
    answer = loaded.signatures["similar_posts"](texts=texts)
    np.testing.assert_array_equal(answer["post_ids"].numpy().astype(str), post_ids)
    np.testing.assert_allclose(answer["scores"].numpy(), scores, atol=1e-5)
    np.testing.assert_allclose(
        loaded.signatures["embed_post"](texts=texts)["embedding"].numpy(),
        model.embed_documents(texts).numpy(),
        atol=1e-5,
    )
    answer = loaded.signatures["rank_topics"](texts=texts, topics=tf.constant(NEW_TOPICS))
    expected = predictor.rank_topics(texts, tf.constant(NEW_TOPICS))
    assert answer.keys() == expected.keys() == {"scores", "indices", "topics"}
    np.testing.assert_allclose(answer["scores"].numpy(), expected["scores"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(answer["topics"].numpy(), expected["topics"].numpy())
    served_ids, embeddings = served_post_index(str(exported[0]))
    assert served_ids == POST_IDS
    np.testing.assert_array_equal(embeddings, index.embeddings.numpy())


@pytest.mark.slow
def test_saved_model_cli_shows_the_signatures(exported):
    path, _ = exported
    cli = Path(sys.executable).with_name("saved_model_cli")
    shown = subprocess.run(
        [str(cli), "show", "--dir", str(path), "--all"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("predict_topics", "embed_post", "similar_posts", "serving_default"):
        assert f"signature_def['{name}']" in shown
    assert "inputs['texts'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in shown
    assert "outputs['topics'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1, 6)" in shown
    assert "outputs['post_ids'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1, 7)" in shown


def test_bad_inputs_fail_clearly_in_python(model, predictor):
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-empty batch of post texts"):
        predictor([])
    with pytest.raises(TypeError, match="string"):
        predictor([1, 2])
    with pytest.raises(ValueError, match="no texts"):
        TopicPredictor(model, [])
    with pytest.raises(ValueError, match="2 entries but 3 embeddings"):
        SimilarPosts(model, POST_IDS[:2], DOCUMENTS[:3])


@pytest.mark.slow
def test_bad_inputs_fail_clearly_in_the_saved_model(exported):
    _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-empty batch of post texts"):
        loaded.signatures["predict_topics"](texts=tf.constant([], tf.string))
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a string tensor"):
        loaded.signatures["similar_posts"](texts=tf.constant([1, 2]))


def test_exported_ngram_model_with_a_lexical_channel_answers_like_in_process(tmp_path):
    """The kind of CD-TOM the across-days benchmark keeps: shared n-gram towers with a lexical channel, no head."""
    from tfcl.recipes.cdtom import build_cdtom

    model = build_cdtom(
        None,
        text_tower="ngram",
        shared_towers=True,
        ngram_buckets=512,
        ngram_dim=16,
        lexical_dim=32,
        lexical_weight=0.8,
        projection_dim=None,
    )
    model.encoder.adapt(DOCUMENTS + TOPICS)
    path = str(tmp_path / "model")
    export_weibo_model(
        model,
        TOPICS,
        POST_IDS,
        DOCUMENTS,
        path,
        k=K,
        topic_index="combined",
        post_topics=[topics for _, topics in POSTS],
    )
    loaded, texts = tf.saved_model.load(path), tf.constant(QUERIES)
    embeddings = model.embed_documents(texts).numpy()
    assert embeddings.shape == (len(QUERIES), 16 + 32)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    served = loaded.signatures["embed_post"](texts=texts)["embedding"].numpy()
    np.testing.assert_allclose(served, embeddings, atol=1e-5)
    answer = loaded.signatures["rank_topics"](texts=texts, topics=tf.constant(NEW_TOPICS))
    cosines = embeddings @ model.embed_topics(tf.constant(NEW_TOPICS)).numpy().T
    np.testing.assert_allclose(answer["scores"].numpy(), cosines, atol=1e-5)
    post_ids, scores = SimilarPosts(model, POST_IDS, DOCUMENTS, k=K)(QUERIES)
    answer = loaded.signatures["similar_posts"](texts=texts)
    np.testing.assert_array_equal(answer["post_ids"].numpy().astype(str), post_ids)
    np.testing.assert_allclose(answer["scores"].numpy(), scores, atol=1e-5)
