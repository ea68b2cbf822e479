"""W-CLIP: CLIP on Weibo posts and their pictures, with in-batch (CLIP) or queued (WenLan) negatives.

Posts are :class:`tfcl.data.weibo.WeiboPost` (read by :func:`tfcl.data.weibo.read_posts` or ingested): the text
side of a pair is :func:`post_text`, the post's document (hashtags removed, mentions, URLs and card residue
normalised as the ingestion does) after its hashtag names; the picture side is each of the post's pictures that
:func:`picture_path` finds (a post with two pictures gives two pairs). Weibo's picture URLs and ids are not
downloaded here: pictures must be files (local, or on a file system ``tf.io.gfile`` reads), or the
``emoji:<code point>`` / ``tuxpaint:<stamp path>`` references of the generated sample corpus
(:mod:`tfcl.data.weibo_sample`), resolved in the fetched emoji / Tux Paint sets.

Bad input loses nothing: a reference with no file, or whose file is no JPEG/PNG that decodes, is set aside with its
reason (:func:`resolve_pictures`); :func:`train_wclip` writes them to ``picture_dead_letters.jsonl`` and counts
them in ``pictures.json``. Trained models are served by :func:`export_wclip` (博文配图片 / 图片配博文, see
:mod:`tfcl.apps.pictures`) and scored by :func:`evaluate_wclip`.
"""

import collections
import functools
import json
import math
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfcl.apps.pictures import export_picture_model
from tfcl.data.cache import dataset_dir
from tfcl.data.images import decode_files, emoji_records
from tfcl.encoders.pictures import decode_picture
from tfcl.eval.image_text import retrieval_metrics
from tfcl.recipes.image_text import build_image_text_model, embed_in_batches, fit_pairs, pair_batches, read_pictures
from tfcl.text import learn_vocabulary

NEGATIVES = {"in_batch": "clip", "queue": "wenlan"}  # W-CLIP's negatives → the image-text method that has them
NOT_FOUND, UNDECODABLE = "not_found", "undecodable"  # why a picture reference is set aside
# Pictures are checked by decoding them at this size: one that decodes at it decodes at any larger one (its fitted
# short side only grows), so W-CLIP models take pictures at least this size.
CHECK_SIZE = 16
DEAD_LETTERS_FILE = "picture_dead_letters.jsonl"
REPORT_FILE = "pictures.json"
METRICS_FILE = "metrics.json"


class NoPicturePairs(ValueError):
    """No post has a usable picture: nothing to train or evaluate W-CLIP on."""


def post_text(post):
    """The text side of a post: its hashtag names (without ``#``), then its normalised document."""
    return " ".join([*post.topics, post.document]).strip()


def picture_path(ref, picture_root=None):
    """The file of a picture reference, or None: ``emoji:<code point>`` (an emoji picture), ``tuxpaint:<stamp
    path>`` (a Tux Paint stamp), or a path (relative ones under ``picture_root``) of an existing file."""
    kind, _, name = ref.partition(":")
    if kind == "emoji" and name:
        path = str(_emoji_files().get(_emoji_key(name), dataset_dir("emoji") / "missing"))
    elif kind == "tuxpaint" and name:
        path = str(dataset_dir("tuxpaint") / "stamps" / name)
    else:
        path = os.path.join(picture_root or ".", ref)
    return path if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path) else None


def _emoji_key(code):
    return code.lower().replace("-fe0f", "")


@functools.lru_cache(maxsize=1)
def _emoji_files():
    """Emoji picture files by code point (lowercase, without the -FE0F variation selector)."""
    return {_emoji_key(record["code"]): dataset_dir("emoji") / record["image"] for record in emoji_records()}


def _decodes(path):
    """Whether a file holds a JPEG or PNG that the picture tower decodes (at :data:`CHECK_SIZE` or more: a picture
    over 16 times as long as it is wide has no row left at that size)."""
    try:
        decode_picture(tf.io.read_file(path), CHECK_SIZE)
    except tf.errors.InvalidArgumentError:
        return False
    return True


def resolve_pictures(posts, picture_root=None):
    """The picture references of ``posts``, resolved: ``(found, set_aside)``.

    ``found``: ``(post index, ref, path)`` of each reference to a file that decodes; ``set_aside``: a dict
    ``{"post_id", "ref", "reason"}`` for each other one, ``reason`` :data:`NOT_FOUND` (no file) or
    :data:`UNDECODABLE` (no JPEG/PNG, a corrupt one, or too narrow; see :func:`_decodes`). Each file is decoded
    once.
    """
    found, set_aside, decodes = [], [], {}
    for index, post in enumerate(posts):
        for ref in post.pictures:
            path = picture_path(ref, picture_root)
            if path is not None and path not in decodes:
                decodes[path] = _decodes(path)
            if path is not None and decodes[path]:
                found.append((index, ref, path))
            else:
                set_aside.append({"post_id": post.id, "ref": ref, "reason": UNDECODABLE if path else NOT_FOUND})
    return found, set_aside


def post_picture_pairs(posts, picture_root=None):
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


def pairs_report(pairs, posts):
    """Counts of :func:`post_picture_pairs` over ``posts``: every reference is a pair or set aside."""
    reasons = collections.Counter(letter["reason"] for letter in pairs["set_aside"])
    return {
        "posts": len(posts),
        "references": sum(len(post.pictures) for post in posts),
        "pairs": len(pairs["text"]),
        "pictures": len(set(pairs["picture"])),
        "set_aside": dict(sorted(reasons.items())),
    }


def build_wclip(vocabulary, negatives="in_batch", **options):
    """A built W-CLIP: :func:`build_image_text_model` of CLIP (``negatives="in_batch"``) or WenLan (``"queue"``),
    taking pictures of at least :data:`CHECK_SIZE` pixels."""
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {sorted(NEGATIVES)}, got {negatives!r}")
    if options.get("image_size", CHECK_SIZE) < CHECK_SIZE:
        raise ValueError(f"image_size must be at least {CHECK_SIZE}, got {options['image_size']}")
    return build_image_text_model(NEGATIVES[negatives], vocabulary, **options)


def wclip_batches(pairs, model, batch_size, shuffle_seed=None):
    """:func:`pair_batches` of ``pairs`` (:func:`post_picture_pairs`), pictures decoded at the model's size."""
    images = decode_files(pairs["picture"], model.encoder.image_size)
    return pair_batches(images, pairs["text"], model, batch_size, pairs["pair_ids"], shuffle_seed)


def retrieval_entities(pairs):
    """``(texts, pictures, gold)``: the distinct post texts and picture files of ``pairs`` and ``gold[i, j]``, picture
    ``i`` goes with text ``j``. Retrieval ranks these (a picture shared by posts is one candidate, not several)."""
    texts, text_of_pair = np.unique(pairs["text"], return_inverse=True)
    pictures, picture_of_pair = np.unique(pairs["picture"], return_inverse=True)
    gold = np.zeros((len(pictures), len(texts)), bool)
    gold[picture_of_pair, text_of_pair] = True
    return texts, pictures, gold


def pair_retrieval_metrics(embed_pictures, embed_texts, pairs, batch_size=256):
    """:func:`tfcl.eval.image_text.retrieval_metrics` over :func:`retrieval_entities`: ``i2t`` (picture → posts)
    and ``t2i`` (post → pictures) recall@1/5/10 and median rank; ``pairs`` (distinct picture–text pairs),
    ``pictures`` and ``texts`` counted.
    ``embed_pictures`` (encoded bytes) and ``embed_texts`` map a string batch to L2-normalised ``[n, d]``."""
    texts, pictures, gold = retrieval_entities(pairs)
    metrics = retrieval_metrics(
        embed_in_batches(embed_pictures, read_pictures(pictures), batch_size),
        embed_in_batches(embed_texts, list(texts), batch_size),
        gold,
    )
    return {**metrics, "pairs": int(gold.sum()), "pictures": len(pictures), "texts": len(texts)}


def chance_metrics(gold, ks=(1, 5, 10)):
    """The expected ``i2t_recall@k`` / ``t2i_recall@k`` of a uniformly random ranking of the same candidates: for a
    query with ``r`` right answers among ``n``, ``1 - C(n - r, k) / C(n, k)``. The floor a model must clear."""
    metrics = {}
    for direction, answers in (("i2t", gold), ("t2i", gold.T)):
        n = answers.shape[1]
        for k in ks:
            cut = min(k, n)
            metrics[f"{direction}_recall@{k}"] = float(
                np.mean([1 - math.comb(n - r, cut) / math.comb(n, cut) for r in answers.sum(axis=1)])
            )
    return metrics


def train_wclip(
    train_posts,
    eval_posts,
    out_dir,
    *,
    negatives="in_batch",
    picture_root=None,
    strategy=None,
    epochs=10,
    batch_size=64,
    steps_per_epoch=None,
    learning_rate=1e-3,
    weight_decay=0.05,
    vocabulary="learned",
    vocabulary_size=2000,
    seed=0,
    verbose=1,
    **model_options,
):
    """Train W-CLIP on the (post, picture) pairs of ``train_posts``; returns ``(model, history)``.

    ``out_dir`` gets :data:`DEAD_LETTERS_FILE` (each picture reference set aside, with its split and reason),
    :data:`REPORT_FILE` (:func:`pairs_report` per split), what :func:`tfcl.training.fit_and_save` writes (resume from
    ``backup/``, TensorBoard ``logs/``, ``model.keras``, ``history.json``) and, if ``eval_posts`` have pairs,
    :data:`METRICS_FILE` (:func:`pair_retrieval_metrics`). Raises :class:`NoPicturePairs` (after writing the dead
    letters) if no train post has a usable picture.

    ``vocabulary``: ``"learned"`` (WordPiece of ``vocabulary_size`` learned from the train posts' texts), or a
    token list or ``vocab.txt`` path. AdamW with warm-up and cosine decay over ``epochs × steps_per_epoch`` (default
    one pass over the train pairs); ``batch_size`` is global under ``strategy``. ``**model_options`` go to
    :func:`build_wclip`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = {"train": list(train_posts), "eval": list(eval_posts)}
    pairs = {split: post_picture_pairs(posts, picture_root) for split, posts in splits.items()}
    with open(out_dir / DEAD_LETTERS_FILE, "w", encoding="utf-8") as file:
        file.writelines(
            json.dumps({"split": split, **letter}, ensure_ascii=False) + "\n"
            for split in splits
            for letter in pairs[split]["set_aside"]
        )
    report = {split: pairs_report(pairs[split], posts) for split, posts in splits.items()}
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=1))
    train = pairs["train"]
    if not len(train["text"]):
        raise NoPicturePairs(
            f"no train post has a usable picture: {report['train']} (see {out_dir / DEAD_LETTERS_FILE})"
        )
    steps_per_epoch = steps_per_epoch or len(train["text"]) // batch_size
    if steps_per_epoch < 1:
        raise NoPicturePairs(f"{len(train['text'])} train pairs do not fill one batch of {batch_size}")
    if vocabulary == "learned":
        vocabulary = learn_vocabulary([post_text(post) for post in splits["train"]], vocabulary_size)
    model, history = fit_pairs(
        lambda synchronized_bn: build_wclip(
            vocabulary, negatives, seed=seed, synchronized_bn=synchronized_bn, **model_options
        ),
        lambda model: wclip_batches(train, model, batch_size, shuffle_seed=seed),
        out_dir,
        strategy=strategy,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        verbose=verbose,
    )
    if len(pairs["eval"]["text"]):
        metrics = pair_retrieval_metrics(model.embed_images, model.embed_texts, pairs["eval"])
        (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
    return model, history


def export_wclip(model, posts, path, picture_root=None, k=10):
    """Write the picture SavedModel of a trained W-CLIP (:func:`tfcl.apps.pictures.export_picture_model`); returns
    ``path``. Its picture index: the usable pictures of ``posts`` (ids: their references; set-aside ones left out);
    its post index: ``posts`` (ids, :func:`post_text`)."""
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


def evaluate_wclip(saved_model_dir, posts, picture_root=None, batch_size=256):
    """:func:`pair_retrieval_metrics` of an exported W-CLIP (its ``embed_picture`` and ``embed_post`` signatures) on
    the pairs of ``posts`` (held-out ones). Raises :class:`NoPicturePairs` if they have none."""
    posts = list(posts)
    pairs = post_picture_pairs(posts, picture_root)
    if not len(pairs["text"]):
        raise NoPicturePairs(f"no post to evaluate on has a usable picture: {pairs_report(pairs, posts)}")
    signatures = tf.saved_model.load(str(saved_model_dir)).signatures

    def embed_pictures(pictures):
        return signatures["embed_picture"](pictures=pictures)["embedding"]

    def embed_texts(texts):
        return signatures["embed_post"](texts=texts)["embedding"]

    return pair_retrieval_metrics(embed_pictures, embed_texts, pairs, batch_size)
