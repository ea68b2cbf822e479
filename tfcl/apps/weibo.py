"""Weibo applications of a trained CD-TOM: 博文预测话题 (post → topics) and 找相似博文 (post → similar posts).

Both score raw post texts against a fixed set of embeddings made once, when the application is built: keys of the
topic vocabulary (:func:`topic_keys`: the topic tower's embedding of each hashtag, the centroid of the document
embeddings of the posts carrying it, or both), or an index of posts through the document tower. Scores are cosines
in CD-TOM's shared space; top-k is exact (one matrix product and ``tf.math.top_k``), or for the post index
optionally approximate (an IVF index in TF ops, :mod:`tfcl.index`). :func:`export_weibo_model` writes both into
one SavedModel whose signatures take raw strings; the vocabulary, its keys and the post index travel inside it as
variables.
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
from tfcl.index import MISSING, build_index
from tfcl.recipes.cdtom import MAX_TOPICS_PER_POST

TOPIC_INDEXES = ("name", "centroid", "combined")
TOPIC_INDEX = "combined"  # the topic keys of an exported CD-TOM (:func:`topic_keys`)


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


class NearestEntries(tf.Module):
    """Top-k of post texts against fixed ``entries`` (names) with L2-normalised ``embeddings``, from an index of
    kind ``index`` (:data:`tfcl.index.INDEXES`: exact, or the approximate ``"ivf"`` with ``index_options`` such as
    ``nlist`` and ``nprobe``, see :class:`tfcl.index.IVFIndex`)."""

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
        """``(entries [batch, k] string, scores [batch, k] float)``, best first; an approximate index may leave
        places unfilled: entry ``""``, score ``-inf``."""
        positions, scores = self.index.search(self.embed(texts)["embedding"])
        entries = tf.gather(self.entries, tf.maximum(positions, 0))
        return tf.where(positions == MISSING, tf.constant("", tf.string), entries), scores

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

    @tf.function(input_signature=[TEXTS])
    def predict_topics(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        topics, scores = self.nearest(texts)
        return {"topics": topics, "scores": scores}


class SimilarPosts(NearestEntries):
    """找相似博文: the ids of the ``k`` posts of an index whose document embeddings are nearest to a post's text.

    A text that is in the index finds itself first (cosine 1) — with an approximate ``index`` (see
    :class:`NearestEntries`), as long as its list is probed.
    """

    def __init__(
        self,
        model: Any,
        post_ids: Sequence[str],
        post_texts: Sequence[str],
        k: int = 10,
        batch_size: int = 256,
        index: str = "exact",
        **index_options: int | str,
    ) -> None:
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
      ``post_ids`` / ``post_texts``.

    ``k`` is capped at the number of topics (resp. posts). ``topic_index``: the keys of ``predict_topics`` (see
    :func:`topic_keys`); other than ``"name"``, built from the index posts and their topics ``post_topics``.
    ``post_index``: the kind of index ``similar_posts`` answers from, ``"exact"`` or the approximate ``"ivf"``
    with ``post_index_options`` (``nlist``, ``nprobe``, ...: :class:`tfcl.index.IVFIndex`).
    """
    topic_predictor = TopicPredictor(model, topics, k, batch_size, topic_index, post_texts, post_topics)
    similar_posts = SimilarPosts(model, post_ids, post_texts, k, batch_size, post_index, **(post_index_options or {}))
    return write_signatures(
        path,
        [model, topic_predictor, similar_posts],
        {
            "serving_default": topic_predictor.predict_topics,
            "predict_topics": topic_predictor.predict_topics,
            "embed_post": similar_posts.embed,
            "similar_posts": similar_posts.similar_posts,
        },
    )


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
