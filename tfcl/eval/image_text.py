"""Image–text evaluation: recall@k and median rank both ways on held-out pairs, zero-shot classification.

Plain arrays in, plain dicts out (as :mod:`tfcl.eval.retrieval`, whose tie rule is used: a candidate scored equal
to the best correct one counts as ranked before it, so a constant model ranks last).
"""

import numpy as np

from tfcl.eval.retrieval import topic_ranks

# Chinese prompt templates for zero-shot classification; a class embedding is the mean over them.
PROMPT_TEMPLATES_ZH = ("一张{}的图片", "{}的图片", "一个{}", "这是{}", "{}")


def retrieval_metrics(image_embeddings, text_embeddings, gold=None, ks=(1, 5, 10)):
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


def class_embeddings(embed_texts, class_names, templates=PROMPT_TEMPLATES_ZH):
    """``[classes, d]``: for each class the L2-normalised mean of its prompts' embeddings (``templates`` filled
    with the class name); ``embed_texts`` maps a list of strings to L2-normalised ``[n, d]``."""
    prompts = [template.format(name) for name in class_names for template in templates]
    embeddings = np.asarray(embed_texts(prompts), np.float64).reshape(len(class_names), len(templates), -1)
    means = embeddings.mean(axis=1)
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def zero_shot_accuracy(image_embeddings, classes, labels):
    """Share of images whose nearest class embedding (highest cosine; ``classes`` from :func:`class_embeddings`)
    is their label's."""
    predictions = np.argmax(np.asarray(image_embeddings, np.float64) @ np.asarray(classes, np.float64).T, axis=1)
    return float(np.mean(predictions == np.asarray(labels)))
