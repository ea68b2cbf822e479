"""Weibo applications of a trained CD-TOM: 博文预测话题 (post → topics) and 找相似博文 (post → similar posts).

Both score raw post texts against a fixed set of embeddings made once, when the application is built: the topic
vocabulary through the topic tower, or an index of posts through the document tower. Scores are cosines in CD-TOM's
shared space; top-k is exact (one matrix product and ``tf.math.top_k``). :func:`export_weibo_model` writes both
into one SavedModel whose signatures take raw strings; the vocabulary, its embeddings and the post index travel
inside it as variables.
"""
import keras
import numpy as np
import tensorflow as tf

TEXTS = tf.TensorSpec([None], tf.string, name="texts")


def embed_texts(embed, texts, batch_size=256):
    """``embed`` (strings → L2-normalised ``[n, d]``) over ``texts`` in batches, as a float32 array."""
    if len(texts) == 0:
        raise ValueError("nothing to embed: got no texts")
    embed = tf.function(embed, input_signature=[TEXTS])
    return np.concatenate([embed(tf.constant(list(texts[start:start + batch_size]), tf.string)).numpy()
                           for start in range(0, len(texts), batch_size)])


def checked_texts(texts):
    """``texts`` unchanged, or an ``InvalidArgumentError`` naming the problem if the batch is empty."""
    check = tf.debugging.assert_greater(tf.size(texts), 0, message="expects a non-empty batch of post texts")
    with tf.control_dependencies([check]):
        return tf.identity(texts)


class _NearestEntries(tf.Module):
    """Exact top-k of post texts against fixed ``entries`` (names) with L2-normalised ``embeddings``."""

    def __init__(self, model, entries, embeddings, k, name):
        super().__init__(name=name)
        if len(entries) != len(embeddings):
            raise ValueError(f"{len(entries)} entries but {len(embeddings)} embeddings")
        self.model = model
        self.entries = tf.Variable(tf.constant([str(entry) for entry in entries], tf.string), trainable=False,
                                   name="entries")
        self.embeddings = tf.Variable(embeddings, trainable=False, name="embeddings")
        self.k = min(k, len(entries))

    @tf.function(input_signature=[TEXTS])
    def embed(self, texts):
        """``{"embedding": [batch, d]}``: the L2-normalised document embedding of each text."""
        return {"embedding": self.model.embed_documents(checked_texts(texts))}

    @tf.function(input_signature=[TEXTS])
    def score(self, texts):
        """``[batch, entries]`` cosine of each text with every entry."""
        return tf.matmul(self.embed(texts)["embedding"], self.embeddings, transpose_b=True)

    @tf.function(input_signature=[TEXTS])
    def nearest(self, texts):
        """``(entries [batch, k] string, scores [batch, k] float)``, best first."""
        top = tf.math.top_k(self.score(texts), k=self.k)
        return tf.gather(self.entries, top.indices), top.values

    def __call__(self, texts):
        """:meth:`nearest` for a list of Python strings: ``(entries [batch, k] str array, scores [batch, k])``."""
        entries, scores = self.nearest(tf.constant(texts, tf.string))
        return np.char.decode(entries.numpy().astype(np.bytes_), "utf-8"), scores.numpy()


class TopicPredictor(_NearestEntries):
    """博文预测话题: the ``k`` topics of ``topics`` whose topic-tower embeddings are nearest to a post's text."""

    def __init__(self, model, topics, k=10, batch_size=256):
        super().__init__(model, topics, embed_texts(model.embed_topics, topics, batch_size), k, "topic_predictor")

    @tf.function(input_signature=[TEXTS])
    def predict_topics(self, texts):
        topics, scores = self.nearest(texts)
        return {"topics": topics, "scores": scores}


class SimilarPosts(_NearestEntries):
    """找相似博文: the ids of the ``k`` posts of an index whose document embeddings are nearest to a post's text.

    A text that is in the index finds itself first (cosine 1).
    """

    def __init__(self, model, post_ids, post_texts, k=10, batch_size=256):
        embeddings = embed_texts(model.embed_documents, post_texts, batch_size)
        super().__init__(model, post_ids, embeddings, k, "similar_posts")

    @tf.function(input_signature=[TEXTS])
    def similar_posts(self, texts):
        post_ids, scores = self.nearest(texts)
        return {"post_ids": post_ids, "scores": scores}


def export_weibo_model(model, topics, post_ids, post_texts, path, k=10, batch_size=256):
    """Write one SavedModel serving a CD-TOM ``model`` on raw strings; returns ``path``.

    Signatures (input ``texts``: ``[batch]`` UTF-8 post texts, a non-empty batch):

    * ``predict_topics`` (also ``serving_default``): ``topics`` ``[batch, k]`` string, ``scores`` ``[batch, k]``
      float (cosine), best first, among ``topics``;
    * ``embed_post``: ``embedding`` ``[batch, d]``, L2-normalised, in the space of the post index;
    * ``similar_posts``: ``post_ids`` ``[batch, k]`` string, ``scores`` ``[batch, k]``, among the posts
      ``post_ids`` / ``post_texts``.

    ``k`` is capped at the number of topics (resp. posts).
    """
    topic_predictor = TopicPredictor(model, topics, k, batch_size)
    similar_posts = SimilarPosts(model, post_ids, post_texts, k, batch_size)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(topic_predictor)
    archive.track(similar_posts)
    archive.add_endpoint("serving_default", topic_predictor.predict_topics)
    archive.add_endpoint("predict_topics", topic_predictor.predict_topics)
    archive.add_endpoint("embed_post", similar_posts.embed)
    archive.add_endpoint("similar_posts", similar_posts.similar_posts)
    archive.write_out(str(path), verbose=False)
    return path
