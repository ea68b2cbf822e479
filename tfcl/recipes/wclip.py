"""W-CLIP: CLIP on Weibo posts and their pictures, with in-batch (CLIP) or queued (WenLan) negatives.

Posts are :class:`tfcl.data.weibo.WeiboPost` (read by :func:`tfcl.data.weibo.read_posts` or ingested): the text
side of a pair is :func:`post_text`, the post's document (hashtags removed, mentions, URLs and card residue
normalised as the ingestion does) after its hashtag names; the picture side is each of the post's pictures that
:func:`picture_path` finds on disk (a post with two pictures gives two pairs). Weibo's picture URLs and ids are not
downloaded here: pictures must be local files, or the ``emoji:<code point>`` / ``tuxpaint:<stamp path>`` references
of the generated sample corpus (:mod:`tfcl.data.weibo_sample`), resolved in the fetched emoji / Tux Paint sets.
"""
import functools
from pathlib import Path

import numpy as np

from tfcl.data.cache import dataset_dir
from tfcl.data.images import decode_files, emoji_records
from tfcl.recipes.image_text import build_image_text_model, pair_batches

NEGATIVES = {"in_batch": "clip", "queue": "wenlan"}  # W-CLIP's negatives → the image-text method that has them


def post_text(post):
    """The text side of a post: its hashtag names (without ``#``), then its normalised document."""
    return " ".join([*post.topics, post.document]).strip()


def picture_path(ref, picture_root=None):
    """The local file of a picture reference, or None: ``emoji:<code point>`` (an emoji picture),
    ``tuxpaint:<stamp path>`` (a Tux Paint stamp), or a path (relative ones under ``picture_root``) that exists."""
    kind, _, name = ref.partition(":")
    if kind == "emoji" and name:
        path = _emoji_files().get(_emoji_key(name), dataset_dir("emoji") / "missing")
    elif kind == "tuxpaint" and name:
        path = dataset_dir("tuxpaint") / "stamps" / name
    else:
        path = Path(picture_root or ".") / ref
    return str(path) if path.is_file() else None


def _emoji_key(code):
    return code.lower().replace("-fe0f", "")


@functools.lru_cache(maxsize=1)
def _emoji_files():
    """Emoji picture files by code point (lowercase, without the -FE0F variation selector)."""
    return {_emoji_key(record["code"]): dataset_dir("emoji") / record["image"] for record in emoji_records()}


def post_picture_pairs(posts, picture_root=None):
    """One pair per (post, local picture) of ``posts``, as a dict of NumPy arrays: ``picture`` (file path),
    ``text`` (:func:`post_text`), ``post_id``, and ``pair_ids`` ``[n, 2]`` int32: the post's index and the
    picture's (offset past the posts), so that two pictures of one post, or one picture of two posts, are no
    negatives for each other. ``unresolved``: how many picture references had no local file."""
    rows, unresolved, picture_index = [], 0, {}
    posts = list(posts)
    for index, post in enumerate(posts):
        for ref in post.pictures:
            path = picture_path(ref, picture_root)
            if path is None:
                unresolved += 1
                continue
            picture = picture_index.setdefault(path, len(posts) + len(picture_index))
            rows.append((path, post_text(post), post.id, (index, picture)))
    if not rows:
        raise ValueError(f"no post has a local picture ({unresolved} references not found)")
    paths, texts, post_ids, pair_ids = zip(*rows)
    return {"picture": np.array(paths), "text": np.array(texts), "post_id": np.array(post_ids),
            "pair_ids": np.array(pair_ids, np.int32), "unresolved": unresolved}


def build_wclip(vocabulary, negatives="in_batch", **options):
    """A built W-CLIP: :func:`build_image_text_model` of CLIP (``negatives="in_batch"``) or WenLan (``"queue"``)."""
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {sorted(NEGATIVES)}, got {negatives!r}")
    return build_image_text_model(NEGATIVES[negatives], vocabulary, **options)


def wclip_batches(pairs, model, batch_size, shuffle_seed=None):
    """:func:`pair_batches` of ``pairs`` (:func:`post_picture_pairs`), pictures decoded at the model's size."""
    images = decode_files(pairs["picture"], model.encoder.image_size)
    return pair_batches(images, pairs["text"], model, batch_size, pairs["pair_ids"], shuffle_seed)
