"""Weibo posts and their pictures as (post, picture) pairs: the data W-CLIP trains on, is scored on and serves.

Posts are :class:`tfcl.data.weibo.WeiboPost` (read by :func:`tfcl.data.weibo.read_posts` or ingested): the text
side of a pair is :func:`post_text`, the post's document (hashtags removed, mentions, URLs and card residue
normalised as the ingestion does) after its hashtag names; the picture side is each of the post's pictures that
:func:`picture_path` finds (a post with two pictures gives two pairs). Weibo's picture URLs and ids are not
downloaded here: pictures must be files (local, or on a file system ``tf.io.gfile`` reads), or the
``emoji:<code point>`` / ``tuxpaint:<stamp path>`` references of the generated sample corpus
(:mod:`tfcl.data.weibo_sample`), resolved in the fetched emoji / Tux Paint sets.

Bad input loses nothing: a reference with no file, or whose file is no JPEG/PNG that decodes, is set aside with its
reason (:func:`resolve_pictures`).
"""

from __future__ import annotations

import collections
import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfcl.data.cache import dataset_dir
from tfcl.data.images import emoji_records
from tfcl.data.weibo import WeiboPost
from tfcl.encoders.pictures import decode_picture

NOT_FOUND, UNDECODABLE = "not_found", "undecodable"  # why a picture reference is set aside
# Pictures are checked by decoding them at this size: one that decodes at it decodes at any larger one (its fitted
# short side only grows), so W-CLIP models take pictures at least this size.
CHECK_SIZE = 16


class NoPicturePairs(ValueError):
    """No post has a usable picture: nothing to train or evaluate W-CLIP on."""


def post_text(post: WeiboPost) -> str:
    """The text side of a post: its hashtag names (without ``#``), then its normalised document."""
    return " ".join([*post.topics, post.document]).strip()


def picture_path(ref: str, picture_root: str | None = None) -> str | None:
    """The file of a picture reference, or None: ``emoji:<code point>`` (an emoji picture), ``tuxpaint:<stamp
    path>`` (a Tux Paint stamp), or a path (relative ones under ``picture_root``) of an existing file."""
    kind, _, name = ref.partition(":")
    if kind == "emoji" and name:
        path = str(emoji_files().get(emoji_key(name), dataset_dir("emoji") / "missing"))
    elif kind == "tuxpaint" and name:
        path = str(dataset_dir("tuxpaint") / "stamps" / name)
    else:
        path = os.path.join(picture_root or ".", ref)
    return path if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path) else None


def emoji_key(code: str) -> str:
    """An emoji code point as :func:`emoji_files` keys it: lowercase, without the -FE0F variation selector."""
    return code.lower().replace("-fe0f", "")


@functools.lru_cache(maxsize=1)
def emoji_files() -> dict[str, Path]:
    """Emoji picture files by :func:`emoji_key`."""
    return {emoji_key(record["code"]): dataset_dir("emoji") / record["image"] for record in emoji_records()}


def decodes(path: str) -> bool:
    """Whether a file holds a JPEG or PNG that the picture tower decodes (at :data:`CHECK_SIZE` or more: a picture
    over 16 times as long as it is wide has no row left at that size)."""
    try:
        decode_picture(tf.io.read_file(path), CHECK_SIZE)
    except tf.errors.InvalidArgumentError:
        return False
    return True


def read_pictures(paths: Iterable[str]) -> list[bytes]:
    """The bytes of each picture file (any file system ``tf.io.gfile`` reads)."""
    return [tf.io.gfile.GFile(path, "rb").read() for path in paths]


def resolve_pictures(
    posts: Sequence[WeiboPost], picture_root: str | None = None
) -> tuple[list[tuple[int, str, str]], list[dict[str, str]]]:
    """The picture references of ``posts``, resolved: ``(found, set_aside)``.

    ``found``: ``(post index, ref, path)`` of each reference to a file that decodes; ``set_aside``: a dict
    ``{"post_id", "ref", "reason"}`` for each other one, ``reason`` :data:`NOT_FOUND` (no file) or
    :data:`UNDECODABLE` (no JPEG/PNG, a corrupt one, or too narrow; see :func:`decodes`). Each file is decoded
    once.
    """
    found, set_aside, decoded = [], [], {}
    for index, post in enumerate(posts):
        for ref in post.pictures:
            path = picture_path(ref, picture_root)
            if path is not None and path not in decoded:
                decoded[path] = decodes(path)
            if path is not None and decoded[path]:
                found.append((index, ref, path))
            else:
                set_aside.append({"post_id": post.id, "ref": ref, "reason": UNDECODABLE if path else NOT_FOUND})
    return found, set_aside


def post_picture_pairs(posts: Iterable[WeiboPost], picture_root: str | None = None) -> dict[str, Any]:
    """One pair per (post, usable picture) of ``posts``, as a dict of NumPy arrays: ``picture`` (file path),
    ``text`` (:func:`post_text`), ``post_id``, and ``pair_ids`` ``[n, 2]`` int32: the post's index and the
    picture's (offset past the posts), so that two pictures of one post, or one picture of two posts, are no
    negatives for each other; ``set_aside``: the references left out (see :func:`resolve_pictures`)."""
    posts = list(posts)
    found, set_aside = resolve_pictures(posts, picture_root)
    picture_ids = {}
    rows = [
        (
            path,
            post_text(posts[index]),
            posts[index].id,
            (index, picture_ids.setdefault(path, len(posts) + len(picture_ids))),
        )
        for index, _, path in found
    ]
    paths, texts, post_ids, pair_ids = zip(*rows) if rows else ((), (), (), ())
    return {
        "picture": np.array(paths, str),
        "text": np.array(texts, str),
        "post_id": np.array(post_ids, str),
        "pair_ids": np.array(pair_ids, np.int32).reshape(-1, 2),
        "set_aside": set_aside,
    }


def pairs_report(pairs: dict[str, Any], posts: Sequence[WeiboPost]) -> dict[str, Any]:
    """Counts of :func:`post_picture_pairs` over ``posts``: every reference is a pair or set aside."""
    reasons = collections.Counter(letter["reason"] for letter in pairs["set_aside"])
    return {
        "posts": len(posts),
        "references": sum(len(post.pictures) for post in posts),
        "pairs": len(pairs["text"]),
        "pictures": len(set(pairs["picture"])),
        "set_aside": dict(sorted(reasons.items())),
    }


def retrieval_entities(pairs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(texts, pictures, gold)``: the distinct post texts and picture files of ``pairs`` and ``gold[i, j]``, picture
    ``i`` goes with text ``j``. Retrieval ranks these (a picture shared by posts is one candidate, not several)."""
    texts, text_of_pair = np.unique(pairs["text"], return_inverse=True)
    pictures, picture_of_pair = np.unique(pairs["picture"], return_inverse=True)
    gold = np.zeros((len(pictures), len(texts)), bool)
    gold[picture_of_pair, text_of_pair] = True
    return texts, pictures, gold
