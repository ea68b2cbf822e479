"""Image–text evaluation: recall@k and median rank both ways on held-out pairs, zero-shot classification.

Plain arrays in, plain dicts out (as :mod:`tfcl.eval.retrieval`, whose tie rule is used: a candidate scored equal
to the best correct one counts as ranked before it, so a constant model ranks last).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfcl.data.post_pictures import NoPicturePairs, pairs_report, post_picture_pairs, read_pictures, retrieval_entities
from tfcl.data.weibo import WeiboPost
from tfcl.eval.batches import predict_in_batches
from tfcl.eval.retrieval import topic_ranks

Embed = Callable[[tf.Tensor], tf.Tensor]  # a batch → L2-normalised [n, d] embeddings

# Chinese prompt templates for zero-shot classification; a class embedding is the mean over them.
PROMPT_TEMPLATES_ZH = ("一张{}的图片", "{}的图片", "一个{}", "这是{}", "{}")


def retrieval_metrics(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    gold: np.ndarray | None = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """``{"i2t_recall@k", "i2t_median_rank", "t2i_recall@k", "t2i_median_rank", "pairs"}``.

    Args:
      image_embeddings, text_embeddings: ``[n, d]`` L2-normalised; row ``i`` of each is held-out pair ``i``.
      gold: optional ``[n, n]`` bool, ``gold[i, j]``: text ``j`` is a right answer for image ``i`` (default: the
        diagonal; pass e.g. equal-text pairs so that a duplicate caption is not counted wrong).
      ks: the recall cut-offs.
    """
    similarities = np.asarray(image_embeddings, np.float64) @ np.asarray(text_embeddings, np.float64).T
    gold = np.eye(len(similarities), dtype=bool) if gold is None else np.asarray(gold, bool)
    metrics = {}
    for direction, scores, answers in (("i2t", similarities, gold), ("t2i", similarities.T, gold.T)):
        ranks = topic_ranks(scores, answers)
        metrics.update({f"{direction}_recall@{k}": float(np.mean(ranks <= k)) for k in ks})
        metrics[f"{direction}_median_rank"] = float(np.median(ranks))
    return {**metrics, "pairs": int(len(similarities))}


def class_embeddings(
    embed_texts: Callable[[list[str]], np.ndarray],
    class_names: Sequence[str],
    templates: Sequence[str] = PROMPT_TEMPLATES_ZH,
) -> np.ndarray:
    """``[classes, d]``: for each class the L2-normalised mean of its prompts' embeddings (``templates`` filled
    with the class name); ``embed_texts`` maps a list of strings to L2-normalised ``[n, d]``."""
    prompts = [template.format(name) for name in class_names for template in templates]
    embeddings = np.asarray(embed_texts(prompts), np.float64).reshape(len(class_names), len(templates), -1)
    means = embeddings.mean(axis=1)
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def zero_shot_accuracy(image_embeddings: np.ndarray, classes: np.ndarray, labels: Sequence[int]) -> float:
    """Share of images whose nearest class embedding (highest cosine; ``classes`` from :func:`class_embeddings`)
    is their label's."""
    predictions = np.argmax(np.asarray(image_embeddings, np.float64) @ np.asarray(classes, np.float64).T, axis=1)
    return float(np.mean(predictions == np.asarray(labels)))


def evaluate_image_text(model: Any, pairs: dict[str, np.ndarray], batch_size: int = 256) -> dict[str, float]:
    """Retrieval both ways on the held-out pairs of :func:`tfcl.data.images.picture_text_pairs`
    (:func:`retrieval_metrics`; pairs with the same text count as right answers) and zero-shot accuracy over each
    source's Chinese category names (``zero_shot_<source>``) of an image–text ``model``
    (:class:`tfcl.models.ImageTextModel`)."""
    held_out = {key: value[pairs["held_out"]] for key, value in pairs.items()}
    images = predict_in_batches(model.embed_images, held_out["image"], batch_size)
    texts = predict_in_batches(model.embed_texts, list(held_out["text"]), batch_size)
    metrics = retrieval_metrics(images, texts, np.equal.outer(held_out["text"], held_out["text"]))
    for source in np.unique(held_out["source"]):
        rows = (held_out["source"] == source) & (held_out["category_zh"] != "")
        names = sorted(set(pairs["category_zh"][(pairs["source"] == source) & (pairs["category_zh"] != "")]))
        classes = class_embeddings(lambda prompts: predict_in_batches(model.embed_texts, prompts, batch_size), names)
        labels = [names.index(name) for name in held_out["category_zh"][rows]]
        metrics[f"zero_shot_{source}"] = zero_shot_accuracy(images[rows], classes, labels)
    return metrics


def pair_retrieval_metrics(
    embed_pictures: Embed, embed_texts: Embed, pairs: dict[str, Any], batch_size: int = 256
) -> dict[str, float]:
    """:func:`retrieval_metrics` over :func:`tfcl.data.post_pictures.retrieval_entities`: ``i2t`` (picture → posts)
    and ``t2i`` (post → pictures) recall@1/5/10 and median rank; ``pairs`` (distinct picture–text pairs),
    ``pictures`` and ``texts`` counted.
    ``embed_pictures`` (encoded bytes) and ``embed_texts`` map a string batch to L2-normalised ``[n, d]``."""
    texts, pictures, gold = retrieval_entities(pairs)
    metrics = retrieval_metrics(
        predict_in_batches(embed_pictures, read_pictures(pictures), batch_size),
        predict_in_batches(embed_texts, list(texts), batch_size),
        gold,
    )
    return {**metrics, "pairs": int(gold.sum()), "pictures": len(pictures), "texts": len(texts)}


def chance_metrics(gold: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
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


def evaluate_picture_model(
    saved_model_dir: str, posts: Sequence[WeiboPost], picture_root: str | None = None, batch_size: int = 256
) -> dict[str, float]:
    """:func:`pair_retrieval_metrics` of an exported W-CLIP (its ``embed_picture`` and ``embed_post`` signatures) on
    the pairs of ``posts`` (held-out ones). Raises :class:`~tfcl.data.post_pictures.NoPicturePairs` if they have
    none."""
    posts = list(posts)
    pairs = post_picture_pairs(posts, picture_root)
    if not len(pairs["text"]):
        raise NoPicturePairs(f"no post to evaluate on has a usable picture: {pairs_report(pairs, posts)}")
    signatures = tf.saved_model.load(str(saved_model_dir)).signatures

    def embed_pictures(pictures: tf.Tensor) -> tf.Tensor:
        return signatures["embed_picture"](pictures=pictures)["embedding"]

    def embed_texts(texts: tf.Tensor) -> tf.Tensor:
        return signatures["embed_post"](texts=texts)["embedding"]

    return pair_retrieval_metrics(embed_pictures, embed_texts, pairs, batch_size)
