"""Weibo picture applications of a trained W-CLIP (CLIP or WenLan): 博文配图片 (post → pictures) and 图片配博文
(picture → posts).

As :mod:`tfcl.apps.weibo`: each scores its queries against a fixed index embedded once, when the application is
built (pictures through the image tower, or posts through the text tower), by cosine in the shared space, with an
exact top-k. :func:`export_picture_model` writes both into one SavedModel; pictures go in as the bytes of their
JPEG/PNG files and are decoded inside it; the indexes (ids and embeddings) travel inside as variables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfcl.apps.weibo import NearestEntries, checked_texts, embed_strings
from tfcl.data.post_pictures import NoPicturePairs, post_text, read_pictures, resolve_pictures
from tfcl.data.weibo import WeiboPost
from tfcl.export import PICTURE_INPUT as PICTURES
from tfcl.export import TEXT_INPUT as TEXTS
from tfcl.export import write_signatures


def checked_pictures(pictures: tf.Tensor) -> tf.Tensor:
    """``pictures`` unchanged, or an ``InvalidArgumentError`` if the batch is empty (undecodable bytes fail in the
    picture tower with an ``InvalidArgumentError`` of their own)."""
    check = tf.debugging.assert_greater(tf.size(pictures), 0, message="expects a non-empty batch of pictures")
    with tf.control_dependencies([check]):
        return tf.identity(pictures)


class PicturesForPost(NearestEntries):
    """博文配图片: the ``k`` pictures of an index whose image embeddings are nearest to a post's text."""

    def __init__(
        self, model: Any, picture_ids: Sequence[str], pictures: Sequence[bytes], k: int = 10, batch_size: int = 64
    ) -> None:
        """``pictures``: the encoded bytes of each picture of the index, ``picture_ids`` their names."""
        super().__init__(
            model, picture_ids, embed_strings(model.embed_images, pictures, batch_size), k, "pictures_for_post"
        )

    @tf.function(input_signature=[TEXTS])
    def embed(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        """``{"embedding": [batch, d]}``: the L2-normalised text-tower embedding of each post text."""
        return {"embedding": self.model.embed_texts(checked_texts(texts))}

    @tf.function(input_signature=[TEXTS])
    def pictures_for_post(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        picture_ids, scores = self.nearest(texts)
        return {"picture_ids": picture_ids, "scores": scores}


class PostsForPicture(NearestEntries):
    """图片配博文: the ids of the ``k`` posts of an index whose text embeddings are nearest to a picture."""

    def __init__(
        self, model: Any, post_ids: Sequence[str], post_texts: Sequence[str], k: int = 10, batch_size: int = 256
    ) -> None:
        super().__init__(
            model, post_ids, embed_strings(model.embed_texts, post_texts, batch_size), k, "posts_for_picture"
        )

    @tf.function(input_signature=[PICTURES])
    def embed(self, pictures: tf.Tensor) -> dict[str, tf.Tensor]:
        """``{"embedding": [batch, d]}``: the L2-normalised image-tower embedding of each encoded picture."""
        return {"embedding": self.model.embed_images(checked_pictures(pictures))}

    @tf.function(input_signature=[PICTURES])
    def posts_for_picture(self, pictures: tf.Tensor) -> dict[str, tf.Tensor]:
        post_ids, scores = self.nearest(pictures)
        return {"post_ids": post_ids, "scores": scores}


def export_picture_model(
    model: Any,
    picture_ids: Sequence[str],
    pictures: Sequence[bytes],
    post_ids: Sequence[str],
    post_texts: Sequence[str],
    path: str,
    k: int = 10,
    batch_size: int = 64,
) -> str:
    """Write one SavedModel serving a W-CLIP ``model`` (:class:`tfcl.models.CLIP` or :class:`~tfcl.models.WenLan`);
    returns ``path``.

    Signatures (``texts``: ``[batch]`` UTF-8 post texts; ``pictures``: ``[batch]`` encoded JPEG/PNG files; a
    non-empty batch; bytes that are no JPEG/PNG give ``INVALID_ARGUMENT``):

    * ``pictures_for_post`` (also ``serving_default``): ``texts`` → ``picture_ids`` ``[batch, k]`` string,
      ``scores`` ``[batch, k]`` float (cosine), best first, among ``picture_ids`` / ``pictures``;
    * ``posts_for_picture``: ``pictures`` → ``post_ids`` ``[batch, k]`` string, ``scores``, among ``post_ids`` /
      ``post_texts``;
    * ``embed_post`` (``texts``) and ``embed_picture`` (``pictures``): ``embedding`` ``[batch, d]``, L2-normalised.

    ``k`` is capped at the size of each index.
    """
    pictures_for_post = PicturesForPost(model, picture_ids, pictures, k, batch_size)
    posts_for_picture = PostsForPicture(model, post_ids, post_texts, k, batch_size)
    return write_signatures(
        path,
        [model, pictures_for_post, posts_for_picture],
        {
            "serving_default": pictures_for_post.pictures_for_post,
            "pictures_for_post": pictures_for_post.pictures_for_post,
            "posts_for_picture": posts_for_picture.posts_for_picture,
            "embed_post": pictures_for_post.embed,
            "embed_picture": posts_for_picture.embed,
        },
    )


def export_wclip(
    model: Any, posts: Iterable[WeiboPost], path: str, picture_root: str | None = None, k: int = 10
) -> str:
    """Write the picture SavedModel of a trained W-CLIP (:func:`export_picture_model`); returns ``path``. Its
    picture index: the usable pictures of ``posts`` (ids: their references; set-aside ones left out); its post
    index: ``posts`` (ids, :func:`tfcl.data.post_pictures.post_text`)."""
    posts = list(posts)
    pictures = {ref: file for _, ref, file in resolve_pictures(posts, picture_root)[0]}
    if not pictures:
        raise NoPicturePairs("no post has a usable picture: the picture index would be empty")
    return export_picture_model(
        model,
        list(pictures),
        read_pictures(pictures.values()),
        [post.id for post in posts],
        [post_text(post) for post in posts],
        path,
        k,
    )


def export_image_text(model: Any, pairs: dict[str, np.ndarray], path: str, k: int = 10) -> str:
    """The served picture model (:func:`export_picture_model`) of a CLIP or WenLan trained on
    :func:`tfcl.data.images.picture_text_pairs`, indexing every pair of ``pairs``: pictures by their files' bytes,
    texts by the same id (``source:file name``)."""
    ids = [f"{source}:{Path(file).name}" for source, file in zip(pairs["source"], pairs["path"])]
    return export_picture_model(model, ids, read_pictures(pairs["path"]), ids, list(pairs["text"]), path, k)
