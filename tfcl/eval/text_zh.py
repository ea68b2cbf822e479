"""The Chinese evaluation suite for text encoders (``tfcl eval text``, ``benchmarks/text_zh.py``).

Every task reads the shared development data (:mod:`tfcl.data.zh_text`) and scores frozen representations:

* ``stsb_dev``: Spearman correlation of cosine similarity with the 0–5 score of the 1,458 Chinese STS-B dev pairs.
* ``lcqmc_dev``, ``bq_dev``, ``pawsx_dev``, ``afqmc_dev``: ROC-AUC of cosine similarity for the 0/1 paraphrase
  label of the dev pairs.
* ``smp2020_probe``: logistic regression (:func:`~tfcl.eval.text_similarity.probe_classifier`, C chosen on 20% of
  the training split) trained on SMP2020-EWECT ``usual_train``, accuracy and macro-F1 on ``usual_eval_labeled``.
* ``senti_probe``: the same probe on weibo_senti, a seeded stratified 80/20 split.
* ``weibo_topic``: same-topic precision@10 on the real 2020-03-18 day: posts with exactly one ``#hashtag#``
  (split off by :func:`tfcl.data.weibo.split_hashtags`), document of 5+ characters, de-duplicated by document,
  topics with 20+ such posts; every post queries all the others (itself and identical texts excluded).

A representation is an :data:`~tfcl.eval.text_similarity.Embed` (texts → ``[n, d]``) or a :class:`FitsOnTask`
(the TF-IDF baseline, :class:`CharTfidf`) that is first fitted on each task's own texts: the pairs' sentences,
a probe's training texts, the topic set's documents.

Bad texts (empty, no letter or digit once URLs are removed — emoji only, punctuation only —, longer than
:data:`MAX_TEXT_CHARS`) are skipped, the same ones for every representation, and counted by reason in the result's
``skipped`` (a pair is skipped when either side is bad); records the Weibo reader sets aside are counted there
under its reasons (:data:`tfcl.data.weibo.REASONS`).
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.preprocessing import normalize

from tfcl.data import zh_text
from tfcl.data.weibo import MAX_CHARS, DeadLetter, read_posts
from tfcl.eval.retrieval import char_tfidf, neighbour_precision
from tfcl.eval.text_similarity import Embed, paired_cosines, probe_classifier, sentiment_split

MAX_TEXT_CHARS = MAX_CHARS  # longer evaluation texts are skipped as "oversize"
PAIR_TASKS = {  # task → (loader, metric key); STS-B is scored by Spearman, the 0/1 sets by ROC-AUC
    "stsb_dev": (lambda: zh_text.sts_b("dev"), "stsb_dev_spearman"),
    "lcqmc_dev": (lambda: zh_text.paraphrase_pairs("lcqmc_dev"), "lcqmc_dev_auc"),
    "bq_dev": (lambda: zh_text.paraphrase_pairs("bq_dev"), "bq_dev_auc"),
    "pawsx_dev": (lambda: zh_text.paraphrase_pairs("pawsx_dev"), "pawsx_dev_auc"),
    "afqmc_dev": (lambda: zh_text.paraphrase_pairs("afqmc_dev"), "afqmc_dev_auc"),
}
TASKS = (*PAIR_TASKS, "smp2020_probe", "senti_probe", "weibo_topic")
METRICS = (
    *(key for _, key in PAIR_TASKS.values()),
    "smp2020_probe_acc",
    "smp2020_probe_macro_f1",
    "senti_probe_acc",
    "weibo_topic_p10",
)
TOPIC_DAY = "weibo/weibo_covid_2020-03-18.csv"
TOPIC_NEIGHBOURS = 10  # weibo_topic_p10's k
_URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9./?=&%#_~+:;,@!$'()*\[\]-]*")  # ASCII: a URL runs into Chinese text


@runtime_checkable
class FitsOnTask(Protocol):
    """A representation fitted on each task's own texts before it embeds them (e.g. TF-IDF)."""

    def fit(self, texts: Sequence[str]) -> Embed: ...


@dataclasses.dataclass(frozen=True)
class CharTfidf:
    """The TF-IDF baseline: character n-grams, sublinear tf, rows L2-normalised (see ``char_tfidf``)."""

    ngram_range: tuple[int, int] = (1, 2)

    def fit(self, texts: Sequence[str]) -> Embed:
        return char_tfidf(list(texts), self.ngram_range).transform


Representation = Embed | FitsOnTask


def embed_for(representation: Representation, fit_texts: Sequence[str]) -> Embed:
    """``representation`` as an :data:`Embed` for a task whose fitting texts are ``fit_texts``."""
    return representation.fit(fit_texts) if isinstance(representation, FitsOnTask) else representation


def why_bad(text: str) -> str | None:
    """Why ``text`` is not evaluated (``"empty"``, ``"no_word"``, ``"oversize"``), or None if it is fine."""
    if not text.strip():
        return "empty"
    if len(text) > MAX_TEXT_CHARS:
        return "oversize"
    if not re.search(r"[^\W_]", _URL.sub(" ", text)):
        return "no_word"
    return None


def screen(rows: Sequence[Any], texts_of: Callable[[Any], Sequence[str]]) -> tuple[list[Any], collections.Counter]:
    """The ``rows`` all of whose texts are fine (see :func:`why_bad`), and the skipped rows counted by reason."""
    kept, skipped = [], collections.Counter()
    for row in rows:
        reason = next(filter(None, map(why_bad, texts_of(row))), None)
        if reason is None:
            kept.append(row)
        else:
            skipped[reason] += 1
    return kept, skipped


def pair_metric(representation: Representation, pairs: Sequence[zh_text.ScoredPair], metric: str) -> float:
    """Spearman (``"spearman"``) or ROC-AUC (``"auc"``) of the pairs' cosine similarity against their labels;
    a fitted representation is fitted on all the pairs' sentences."""
    texts = [pair.first for pair in pairs] + [pair.second for pair in pairs]
    vectors = embed_for(representation, texts)(texts)
    cosine = paired_cosines(vectors[: len(pairs)], vectors[len(pairs) :])
    labels = np.array([pair.label for pair in pairs])
    if metric == "spearman":
        return float(spearmanr(cosine, labels).statistic)
    return float(roc_auc_score(labels > 0.5, cosine))


def probe_scores(
    representation: Representation,
    train: tuple[Sequence[str], Sequence[Any]],
    test: tuple[Sequence[str], Sequence[Any]],
    C: float | None = None,
) -> dict[str, float]:
    """``{"acc", "macro_f1", "C"}``: test scores of :func:`probe_classifier` trained on ``train`` (texts, labels),
    and the C it used; a fitted representation is fitted on the training texts only."""
    embed = embed_for(representation, train[0])
    probe = probe_classifier(embed(list(train[0])), np.asarray(train[1]), C=C)
    predicted = probe.predict(embed(list(test[0])))
    labels = np.asarray(test[1])
    return {
        "acc": float(np.mean(predicted == labels)),
        "macro_f1": float(f1_score(labels, predicted, average="macro")),
        "C": float(probe.named_steps["classify"].C),
    }


def same_topic_precision(
    features: Any, texts: Sequence[str], topics: Sequence[str], k: int = 10, chunk: int = 1024
) -> float:
    """Mean share of each post's ``k`` nearest posts (cosine of ``features``) with its topic; a post never finds
    itself or a post with the identical text. Computed ``chunk`` queries at a time."""
    features = normalize(features)
    names, topic_ids = np.unique(np.asarray(topics, dtype=object), return_inverse=True)
    one_hot = np.eye(len(names), dtype=bool)[topic_ids]
    _, text_ids = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    hits = 0.0
    for start in range(0, len(texts), chunk):
        rows = slice(start, start + chunk)
        similarities = features[rows] @ features.T
        similarities = similarities.toarray() if hasattr(similarities, "toarray") else similarities
        exclude = text_ids[rows, None] == text_ids[None, :]
        result = neighbour_precision(similarities, one_hot[rows], one_hot, k=k, exclude=exclude)
        hits += result[f"precision@{k}"] * result["queries"]
    return hits / len(texts)


def topic_posts(
    path: str | Path | None = None,
    min_chars: int = 5,
    min_posts: int = 20,
    limit: int | None = None,
    seed: int = 0,
) -> tuple[list[str], list[str], collections.Counter]:
    """(documents, topics, records set aside by reason) of the topic set (see the module docstring) of a Weibo
    file (default: the shared 2020-03-18 day); ``limit`` keeps a seeded random sample of that many of its posts."""
    dead_letters: list[DeadLetter] = []
    topic_of: dict[str, str] = {}
    for post in read_posts(path or zh_text.shared_file(TOPIC_DAY), dead_letters=dead_letters):
        if len(post.topics) == 1 and len(post.document) >= min_chars:
            topic_of.setdefault(post.document, post.topics[0])
    counts = collections.Counter(topic_of.values())
    documents = [document for document, topic in topic_of.items() if counts[topic] >= min_posts]
    if limit is not None and limit < len(documents):
        documents = [documents[i] for i in sorted(np.random.default_rng(seed).permutation(len(documents))[:limit])]
    skipped = collections.Counter(letter.reason for letter in dead_letters)
    return documents, [topic_of[document] for document in documents], skipped


def evaluate_text(
    representation: Representation,
    tasks: Sequence[str] | None = None,
    limit: int | None = None,
    probe_C: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The Chinese suite's metrics (:data:`METRICS`, those of ``tasks``; default all :data:`TASKS`) for an ``Embed``
    or a :class:`FitsOnTask`, plus ``examples`` (what each task scored), ``skipped`` (``{task: {reason: n}}``) and
    ``probe_C`` (the C each probe used).

    ``limit`` keeps the first that many pairs and probe training and test texts of each task, and a seeded sample of
    that many topic posts (fast checks; the topic set needs more than :data:`TOPIC_NEIGHBOURS`).
    ``probe_C``: the probes' C; None chooses it on the training split (:func:`probe_classifier`).
    """
    tasks = TASKS if tasks is None else tuple(tasks)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"Unknown tasks {unknown}; known: {list(TASKS)}")
    result: dict[str, Any] = {"examples": {}, "skipped": {}, "probe_C": {}}

    def record(task: str, examples: int, skipped: collections.Counter) -> None:
        result["examples"][task] = examples
        if skipped:
            result["skipped"][task] = dict(skipped)

    for task in tasks:
        if task in PAIR_TASKS:
            load, key = PAIR_TASKS[task]
            pairs, skipped = screen(load()[:limit], lambda pair: (pair.first, pair.second))
            result[key] = pair_metric(representation, pairs, "spearman" if key.endswith("spearman") else "auc")
            record(task, len(pairs), skipped)
        elif task in ("smp2020_probe", "senti_probe"):
            if task == "smp2020_probe":
                train, train_skipped = screen(list(zip(*zh_text.smp2020_emotion("train")))[:limit], lambda r: r[:1])
                test, test_skipped = screen(list(zip(*zh_text.smp2020_emotion("eval")))[:limit], lambda r: r[:1])
                skipped = train_skipped + test_skipped
            else:
                rows, skipped = screen(list(zip(*zh_text.weibo_sentiment()))[:limit], lambda r: r[:1])
                labels = [label for _, label in rows]
                num_train = round(0.8 * len(rows))
                train_ids, test_ids = sentiment_split(labels, num_train, len(rows) - num_train, seed)
                train, test = [rows[i] for i in train_ids], [rows[i] for i in test_ids]
            scores = probe_scores(representation, tuple(zip(*train)), tuple(zip(*test)), C=probe_C)
            name = task.removesuffix("_probe")
            result[f"{name}_probe_acc"] = scores["acc"]
            result["probe_C"][task] = scores["C"]
            if task == "smp2020_probe":
                result["smp2020_probe_macro_f1"] = scores["macro_f1"]
            record(task, len(test), skipped)
        else:
            documents, topics, skipped = topic_posts(limit=limit, seed=seed)
            posts, bad = screen(list(zip(documents, topics)), lambda post: post[:1])
            if len(posts) <= TOPIC_NEIGHBOURS:
                raise ValueError(f"The topic set has {len(posts)} posts: precision@{TOPIC_NEIGHBOURS} needs more.")
            documents, topics = [post[0] for post in posts], [post[1] for post in posts]
            features = embed_for(representation, documents)(documents)
            result["weibo_topic_p10"] = same_topic_precision(features, documents, topics, k=TOPIC_NEIGHBOURS)
            record(task, len(documents), skipped + bad)
    return result
