"""Weibo applications of a trained CD-TOM: 博文预测话题 (post → topics) and 找相似博文 (post → similar posts).

Both score raw post texts against a fixed set of embeddings made once, when the application is built: keys of the
topic vocabulary (:func:`topic_keys`: the topic tower's embedding of each hashtag, the centroid of the document
embeddings of the posts carrying it, or both), or an index of posts through the document tower. Scores are cosines
in CD-TOM's shared space; top-k is exact (one matrix product and ``tf.math.top_k``), or for the post index
optionally approximate (an IVF index in TF ops, :mod:`tfcl.index`). :func:`export_weibo_model` writes both into
one SavedModel whose signatures take raw strings; the vocabulary, its keys and the post index travel inside it as
variables. Its ``rank_topics`` signature ranks topic names the caller gives (an open vocabulary) by the topic tower;
:func:`export_topic_vocabulary` re-exports the model for a new vocabulary without retraining, keeping the post index
of an earlier export.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfcl.data.weibo import WeiboPost
from tfcl.eval.batches import predict_in_batches
from tfcl.eval.retrieval import multi_hot
from tfcl.export import TEXT_INPUT as TEXTS
from tfcl.export import write_signatures
from tfcl.index import build_index, listed_vectors
from tfcl.recipes.cdtom import MAX_TOPICS_PER_POST

TOPIC_INDEXES = ("name", "centroid", "combined")
TOPIC_INDEX = "combined"  # the topic keys of an exported CD-TOM (:func:`topic_keys`)
TOPIC_NAMES = tf.TensorSpec([None], tf.string, name="topics")  # the caller's topic names of ``rank_topics``


def embed_strings(
    embed: Callable[[tf.Tensor], tf.Tensor], strings: Sequence[str] | Sequence[bytes], batch_size: int = 256
) -> np.ndarray:
    """``embed`` (a ``[batch]`` string tensor → L2-normalised ``[n, d]``) over ``strings`` (texts, or encoded
    pictures) in batches, traced once, as a float32 array (:func:`tfcl.eval.batches.predict_in_batches`)."""
    return predict_in_batches(embed, strings, batch_size, input_signature=TEXTS)


def checked_texts(texts: tf.Tensor) -> tf.Tensor:
    """``texts`` unchanged, or an ``InvalidArgumentError`` naming the problem if the batch is empty."""
    check = tf.debugging.assert_greater(tf.size(texts), 0, message="expects a non-empty batch of post texts")
    with tf.control_dependencies([check]):
        return tf.identity(texts)


def checked_topics(topics: tf.Tensor) -> tf.Tensor:
    """``topics`` unchanged, or an ``InvalidArgumentError`` naming the problem if there is none."""
    check = tf.debugging.assert_greater(tf.size(topics), 0, message="expects a non-empty list of topic names")
    with tf.control_dependencies([check]):
        return tf.identity(topics)


class NearestEntries(tf.Module):
    """Top-k of post texts against fixed ``entries`` (names) with L2-normalised ``embeddings``, from an index of
    kind ``index`` (:data:`tfcl.index.INDEXES`: exact, or the approximate ``"ivf"`` with ``index_options`` such as
    ``nlist`` and ``candidates``, see :class:`tfcl.index.IVFIndex`)."""

    def __init__(
        self,
        model: Any,
        entries: Sequence[str],
        embeddings: np.ndarray,
        k: int,
        name: str,
        index: str = "exact",
        **index_options: int | str,
    ) -> None:
        super().__init__(name=name)
        if len(entries) != len(embeddings):
            raise ValueError(f"{len(entries)} entries but {len(embeddings)} embeddings")
        self.model = model
        self.entries = tf.Variable(
            tf.constant([str(entry) for entry in entries], tf.string), trainable=False, name="entries"
        )
        self.index = build_index(index, embeddings, k, **index_options)
        self.k = self.index.k

    @property
    def embeddings(self) -> tf.Variable:
        """``[entries, d]``: the embeddings of the exact index."""
        return self.index.vectors

    @tf.function(input_signature=[TEXTS])
    def embed(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        """``{"embedding": [batch, d]}``: the L2-normalised document embedding of each text."""
        return {"embedding": self.model.embed_documents(checked_texts(texts))}

    def score(self, texts: Sequence[str]) -> tf.Tensor:
        """``[batch, entries]`` cosine of each text with every entry (exact index)."""
        return self.index.scores(self.embed(tf.constant(texts, tf.string))["embedding"])

    @tf.function(input_signature=[TEXTS])
    def nearest(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(entries [batch, k] string, scores [batch, k] float)``, best first."""
        positions, scores = self.index.search(self.embed(texts)["embedding"])
        return tf.gather(self.entries, positions), scores

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`nearest` for a list of Python strings: ``(entries [batch, k] str array, scores [batch, k])``."""
        entries, scores = self.nearest(tf.constant(texts, tf.string))
        return np.char.decode(entries.numpy().astype(np.bytes_), "utf-8"), scores.numpy()


def topic_keys(
    name_embeddings: np.ndarray,
    document_embeddings: np.ndarray | None = None,
    document_topics: np.ndarray | None = None,
    index: str = "name",
) -> np.ndarray:
    """``[topics, d]`` L2-normalised keys a post's document embedding is matched against to predict its topics.

    Args:
      name_embeddings: ``[topics, d]`` the topic tower's embeddings of the hashtags.
      document_embeddings: ``[documents, d]`` L2-normalised document embeddings of labelled (training) posts.
      document_topics: ``[documents, topics]`` bool, the topics each of those posts carries.
      index: ``"name"`` (the hashtag's embedding), ``"centroid"`` (the normalised mean embedding of the documents
        carrying the topic: TF-IDF's nearest centroid in CD-TOM's space) or ``"combined"`` (the normalised sum of
        both). A topic no document carries keeps its name embedding.
    """
    if index not in TOPIC_INDEXES:
        raise ValueError(f"index must be one of {TOPIC_INDEXES}, got {index!r}")
    if index == "name":
        return name_embeddings
    sums = np.asarray(document_topics, np.float32).T @ document_embeddings
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    keys = np.where(norms > 0, sums / np.maximum(norms, 1e-12), name_embeddings)
    if index == "combined":
        keys = keys + name_embeddings
    return keys / np.linalg.norm(keys, axis=1, keepdims=True)


class TopicPredictor(NearestEntries):
    """博文预测话题: the ``k`` topics of ``topics`` whose keys (:func:`topic_keys`) are nearest to a post's text.

    ``index`` other than ``"name"`` builds the keys from ``documents`` (texts of labelled posts) and
    ``document_topics`` (each one's topics; those outside ``topics`` are ignored).
    """

    def __init__(
        self,
        model: Any,
        topics: Sequence[str],
        k: int = 10,
        batch_size: int = 256,
        index: str = "name",
        documents: Sequence[str] = (),
        document_topics: Sequence[Sequence[str]] = (),
    ) -> None:
        names = embed_strings(model.embed_topics, topics, batch_size)
        embeddings, carried = None, None
        if index != "name":
            embeddings = embed_strings(model.embed_documents, documents, batch_size)
            carried = multi_hot(document_topics, topics)
        super().__init__(model, topics, topic_keys(names, embeddings, carried, index), k, "topic_predictor")
        self.rank_k = k  # rank_topics' k, capped at the names of each call instead of the vocabulary

    @tf.function(input_signature=[TEXTS])
    def predict_topics(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        topics, scores = self.nearest(texts)
        return {"topics": topics, "scores": scores}

    @tf.function(input_signature=[TEXTS, TOPIC_NAMES])
    def rank_topics(self, texts: tf.Tensor, topics: tf.Tensor) -> dict[str, tf.Tensor]:
        """The caller's ``topics`` (any names: an open vocabulary) for each text, keyed by the topic tower's
        embedding of the name (the ``"name"`` keys of :func:`topic_keys`): ``scores`` ``[batch, n]`` cosines in the
        order of ``topics``; ``indices`` ``[batch, k]`` (into ``topics``) and ``topics`` ``[batch, k]``, best first,
        with ``k`` capped at ``n``."""
        topics = checked_topics(topics)
        scores = tf.matmul(self.embed(texts)["embedding"], self.model.embed_topics(topics), transpose_b=True)
        top = tf.math.top_k(scores, k=tf.minimum(self.rank_k, tf.size(topics)))
        return {"scores": scores, "indices": top.indices, "topics": tf.gather(topics, top.indices)}


class SimilarPosts(NearestEntries):
    """找相似博文: the ids of the ``k`` posts of an index whose document embeddings are nearest to a post's text.

    A text that is in the index finds itself first (cosine 1) — with an approximate ``index`` (see
    :class:`NearestEntries`), as long as its list is read. ``embeddings`` (``[posts, d]``, L2-normalised): the
    index's document embeddings when already made (:func:`served_post_index`), instead of ``post_texts``.
    """

    def __init__(
        self,
        model: Any,
        post_ids: Sequence[str],
        post_texts: Sequence[str] = (),
        k: int = 10,
        batch_size: int = 256,
        embeddings: np.ndarray | None = None,
        index: str = "exact",
        **index_options: int | str,
    ) -> None:
        if embeddings is None:
            embeddings = embed_strings(model.embed_documents, post_texts, batch_size)
        super().__init__(model, post_ids, embeddings, k, "similar_posts", index, **index_options)

    @tf.function(input_signature=[TEXTS])
    def similar_posts(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        post_ids, scores = self.nearest(texts)
        return {"post_ids": post_ids, "scores": scores}


def export_weibo_model(
    model: Any,
    topics: Sequence[str],
    post_ids: Sequence[str],
    post_texts: Sequence[str],
    path: str,
    k: int = 10,
    batch_size: int = 256,
    topic_index: str = "name",
    post_topics: Sequence[Sequence[str]] = (),
    post_index: str = "exact",
    post_index_options: Mapping[str, int | str] | None = None,
) -> str:
    """Write one SavedModel serving a CD-TOM ``model`` on raw strings; returns ``path``.

    Signatures (input ``texts``: ``[batch]`` UTF-8 post texts, a non-empty batch):

    * ``predict_topics`` (also ``serving_default``): ``topics`` ``[batch, k]`` string, ``scores`` ``[batch, k]``
      float (cosine), best first, among ``topics``;
    * ``embed_post``: ``embedding`` ``[batch, d]``, L2-normalised, in the space of the post index;
    * ``similar_posts``: ``post_ids`` ``[batch, k]`` string, ``scores`` ``[batch, k]``, among the posts
      ``post_ids`` / ``post_texts``;
    * ``rank_topics`` (inputs ``texts`` and ``topics``: ``[n]`` topic names, non-empty): the caller's topics ranked
      by name (:meth:`TopicPredictor.rank_topics`).

    ``k`` is capped at the number of topics (resp. posts). ``topic_index``: the keys of ``predict_topics`` (see
    :func:`topic_keys`); other than ``"name"``, built from the index posts and their topics ``post_topics``.
    ``post_index``: the kind of index ``similar_posts`` answers from, ``"exact"`` or the approximate ``"ivf"``
    with ``post_index_options`` (``nlist``, ``candidates``, ...: :class:`tfcl.index.IVFIndex`).
    """
    topic_predictor = TopicPredictor(model, topics, k, batch_size, topic_index, post_texts, post_topics)
    similar_posts = SimilarPosts(
        model, post_ids, post_texts, k, batch_size, index=post_index, **(post_index_options or {})
    )
    return write_weibo_model(model, topic_predictor, similar_posts, path)


def write_weibo_model(model: Any, topic_predictor: TopicPredictor, similar_posts: SimilarPosts, path: str) -> str:
    """The SavedModel of :func:`export_weibo_model` from its two applications; returns ``path``."""
    return write_signatures(
        path,
        [model, topic_predictor, similar_posts],
        {
            "serving_default": topic_predictor.predict_topics,
            "predict_topics": topic_predictor.predict_topics,
            "embed_post": similar_posts.embed,
            "similar_posts": similar_posts.similar_posts,
            "rank_topics": topic_predictor.rank_topics,
        },
    )


def served_post_index(saved_model_dir: str) -> tuple[list[str], np.ndarray]:
    """``(post_ids, embeddings [posts, d])``: the similar-post index inside a SavedModel of
    :func:`export_weibo_model` (the variables its ``similar_posts`` signature reads). An IVF index gives its
    vectors back from its lists (in float16 if it stored them so)."""
    saved_model = tf.saved_model.load(saved_model_dir)  # held: its variables live as long as it does
    signatures = saved_model.signatures
    if "similar_posts" not in signatures:
        raise ValueError(f"{saved_model_dir} has no similar_posts signature: not a Weibo SavedModel")
    variables: dict[str, list[tf.Variable]] = {}
    for variable in signatures["similar_posts"].variables:
        variables.setdefault(variable.name, []).append(variable)

    def value(name: str) -> np.ndarray:
        found = variables.get(name, [])
        if len(found) != 1:
            raise ValueError(f"{saved_model_dir}: expected one {name} variable in similar_posts, found {len(found)}")
        return found[0].numpy()

    post_ids = [entry.decode("utf-8") for entry in value("entries:0")]
    if "vectors:0" in variables:  # exact index
        return post_ids, value("vectors:0")
    return post_ids, listed_vectors(value("lists:0"), value("positions:0"), len(post_ids))  # IVF index


def export_topic_vocabulary(
    model: Any,
    topics: Sequence[str],
    post_index: tuple[Sequence[str], np.ndarray],
    path: str,
    k: int = 10,
    batch_size: int = 256,
) -> str:
    """Re-export a trained CD-TOM ``model`` for a new topic vocabulary without retraining; returns ``path``.

    ``predict_topics`` ranks ``topics`` by the topic tower's embedding of each name (the ``"name"`` keys of
    :func:`topic_keys`: new names carry no labelled posts); ``similar_posts`` answers from ``post_index``
    (``(post_ids, embeddings)``, e.g. an earlier export's: :func:`served_post_index`), not embedded again.
    Signatures as :func:`export_weibo_model`'s.
    """
    post_ids, embeddings = post_index
    topic_predictor = TopicPredictor(model, topics, k, batch_size)
    similar_posts = SimilarPosts(model, post_ids, k=k, embeddings=embeddings)
    return write_weibo_model(model, topic_predictor, similar_posts, path)


def export_cdtom(
    model: Any,
    train_posts: Sequence[WeiboPost],
    topics: Sequence[str],
    path: str,
    topic_index: str = TOPIC_INDEX,
    k: int = 10,
    max_topics_per_post: int = MAX_TOPICS_PER_POST,
    post_index: str = "exact",
    post_index_options: Mapping[str, int | str] | None = None,
) -> str:
    """Write the Weibo SavedModel of a trained CD-TOM (:func:`export_weibo_model`); returns ``path``.

    The similar-post index holds the ``train_posts`` (:class:`tfcl.data.weibo.WeiboPost`) with a document; the
    topic keys come from the ones CD-TOM trains on (tag spam, over ``max_topics_per_post`` topics, is left out
    here too). ``post_index``, ``post_index_options``: the similar-post index (:func:`export_weibo_model`).
    """
    index = [post for post in train_posts if post.document]
    known = set(topics)
    trained_on = [post.topics if len(known.intersection(post.topics)) <= max_topics_per_post else () for post in index]
    return export_weibo_model(
        model,
        topics,
        [post.id for post in index],
        [post.document for post in index],
        path,
        k=k,
        topic_index=topic_index,
        post_topics=trained_on,
        post_index=post_index,
        post_index_options=post_index_options,
    )
