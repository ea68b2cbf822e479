"""Weibo topics benchmark: CD-TOM vs TF-IDF on 博文预测话题 (post → topic) and 找相似博文 (post → similar posts).

Two modes share the TF-IDF baselines (:mod:`tfcl.eval.retrieval`), the CD-TOM trainer (:mod:`tfcl.recipes.cdtom`)
and the metrics (:func:`tfcl.eval.retrieval.topic_ranks`: ties count against the true topic).

**Across days** (``--days``, the main table: results/weibo_days.{json,md,png}). The 48 real day files
(:func:`tfcl.data.zh_text.weibo_day_files`, 2020-01-19 … 2020-04-07, some days missing), read with
:func:`tfcl.data.weibo.read_posts` (malformed records skipped and counted). A post's input is its document (the text
with its hashtags removed, normalised); its labels are its hashtags.

- Reposts: one post per distinct document of 5+ characters (its first day, the union of its copies' hashtags),
  separately for the training days (≤ ``--train-end``, 2020-03-10) and the evaluation window (the days after it up
  to ``--eval-end``, 2020-04-07); evaluation documents that also occur in training are dropped.
- Seen topics: hashtags of ≥ 5 distinct training posts (rarer ones give no centroid worth the name). Queries:
  evaluation posts carrying one, a seeded sample of ``--seen-cap`` (6,000); each ranks every seen topic; hit@1,
  hit@5, MRR of its best-ranked true topic. TF-IDF: nearest centroid (the normalised sum of the normalised TF-IDF
  vectors of the topic's training posts).
- New topics: hashtags in no post of a training day (duplicates and short posts included) and in ≥ 20 distinct
  evaluation posts. 5 posts per new topic are drawn (seed 0) as few-shot keys; the queries are the other evaluation
  posts carrying a new topic, a seeded sample of ``--new-cap`` (6,000). Open vocabulary: each query ranks all new
  topics of the window by the cosine with the topic tower's embedding of the hashtag NAME; TF-IDF: cosine of post
  and name. Few-shot: the keys are the normalised sums of the embeddings of the topic's 5 posts (TF-IDF: of their
  TF-IDF vectors), same queries.
- Similar posts: the index is every evaluation post with a hashtag; ``--similar-cap`` (2,000) seeded queries from it;
  precision@10 = share of the 10 nearest other index posts (cosine; the query itself excluded, and as the posts are
  distinct documents, no exact duplicate of it is there) sharing a hashtag with the query. TF-IDF: cosine.
- TF-IDF: character 1–2-grams, sublinear tf, IDF fitted on the training documents. Chance: random unit vectors.
- CD-TOM: trained on the training posts carrying a seen topic (one pair per seen topic; a post's other hashtags
  are masked as false negatives, see :mod:`tfcl.recipes.cdtom`), a fixed number of epochs; seen-topic keys
  ``centroid`` (as TF-IDF's, in CD-TOM's space), ``name`` or ``combined`` (their normalised sum). Settings are
  chosen on held-out training days (``--train-end 2020-03-03 --eval-end 2020-03-10``), never on the test window.
- Every other row is also compared with TF-IDF query by query on seen hit@5, new hit@1 and similar P@10 (the same
  queries): the difference of the means, its 95% bootstrap interval over queries and the queries above / below.
- hit@5 per evaluation day goes to the PNG; ``ann`` rows are copied from results/ann.json (not recomputed).

**One corpus** (default): the corpus goes through the Beam ingestion job (tfcl/data/weibo_ingest.py:
de-duplication by id, split by id hash, 10% eval, topic vocabulary = topics of at least 5 training posts), CD-TOM
trains on the train split, and both are evaluated on the eval split with the post's hashtags hidden.

- Topic prediction: held-out posts with at least one vocabulary topic (and a non-empty document) rank every
  vocabulary topic; hit@1, hit@5, MRR.
- Similar posts: the same held-out posts query an index of the training posts; precision@10 = share of the 10
  nearest training posts sharing a topic with the query.
- TF-IDF (character 1–2-grams, sublinear tf, fitted on the training documents): topic = nearest centroid of the
  topic's training documents ("centroid", a supervised baseline that sees the same labels as CD-TOM), or the
  topic's own name ("name"); similar posts = document cosine.
- CD-TOM: one training run per τ, early-stopped on the validation loss (the eval split's in-batch loss); rows for
  the weights of the last epoch trained and of the best epoch, each with the three topic keys of
  tfcl/apps/weibo.py (hashtag embedding "name", mean training-document embedding "centroid", "combined").
  --train-budget caps a training run's minutes (no epoch starts after it).
- The real day (--input ../shared/data/weibo/weibo_covid_2020-03-18.csv) adds the "clean 20-topic" set of its
  README, built the same way here: held-out posts with exactly one hashtag, document of 5+ characters,
  de-duplicated by document and not in the training documents, topics with 50+ such posts in the whole file;
  their topics are ranked among those clean topics only.

The default corpus is GENERATED (tfcl/data/weibo_sample.py), not Weibo data. Writes results/weibo_topics.{md,json}.
    python benchmarks/weibo_topics.py                     # generated corpus (run times: see the results)
    python benchmarks/weibo_topics.py --input ../shared/data/weibo/weibo_covid_2020-03-18.csv --name weibo_topics_real
Across days (results/weibo_days.md; the settings chosen on the held-out training days), one command:
    python benchmarks/weibo_topics.py --days --shared-towers --text-tower ngram --ngram-dim 1024 --max-ngrams 512
        --projection-dim 0 --epochs 2 --batch-size 1024 --learning-rate 2e-3 --temperatures 0.05
        --seen-keys centroid combined --lexical-dim 8192 --lexical-weight 0.7 --lexical-eval-weights 0.8
    (--hybrid-weights 0.3 adds the hybrid rows of results/weibo_days_1024_dense.md, an earlier tower without the
    lexical channel.)
"""

import argparse
import collections
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402 (after the logging setting)

RESULTS = Path(__file__).parent / "results"
CLEAN_MIN_POSTS = 50
CLEAN_MIN_CHARS = 5
# The temporal protocol (--days)
TRAIN_END, EVAL_END = "2020-03-10", "2020-04-07"
MIN_DOCUMENT_CHARS = 5
SEEN_MIN_POSTS = 5
NEW_MIN_POSTS = 20
FEW_SHOT = 5


def load_posts(ingested, split):
    from tfcl.data import weibo

    return [weibo.from_example(features) for features in weibo.load_split(ingested, split)]


def labelled(posts, vocabulary, max_topics):
    """The posts CD-TOM trains on / is evaluated on: non-empty document, 1..max_topics vocabulary topics."""
    known = set(vocabulary)
    return [post for post in posts if post.document and 0 < len({t for t in post.topics if t in known}) <= max_topics]


def clean_set(all_posts, train_posts, eval_posts):
    """(held-out posts, topics) of the README's clean evaluation set (see the module docstring)."""

    def single(posts):
        return [post for post in posts if len(post.topics) == 1 and len(post.document) >= CLEAN_MIN_CHARS]

    first_by_document = {}
    for post in single(all_posts):
        first_by_document.setdefault(post.document, post)
    counts = collections.Counter(post.topics[0] for post in first_by_document.values())
    topics = sorted(topic for topic, n in counts.items() if n >= CLEAN_MIN_POSTS)
    seen = {post.document for post in train_posts}
    held_out = {}
    for post in single(eval_posts):
        if post.topics[0] in topics and post.document not in seen:
            held_out.setdefault(post.document, post)
    return list(held_out.values()), topics


def evaluate(topic_scores, similarities, queries, index, vocabulary, columns=None):
    """Topic-prediction and similar-post metrics; ``columns`` restricts the ranked topics to a subset."""
    from tfcl.eval import retrieval

    query_topics = retrieval.multi_hot([post.topics for post in queries], vocabulary)
    scores = topic_scores if columns is None else topic_scores[:, columns]
    gold = query_topics if columns is None else query_topics[:, columns]
    result = retrieval.topic_prediction_metrics(scores, gold)
    if similarities is not None:
        index_topics = retrieval.multi_hot([post.topics for post in index], vocabulary)
        result.update(retrieval.neighbour_precision(similarities, query_topics, index_topics, k=10))
    return result


def tfidf_results(train, queries, vocabulary, clean):
    from tfcl.eval import retrieval

    train_documents = [post.document for post in train]
    documents = [post.document for post in queries]
    vectorizer = retrieval.char_tfidf(train_documents)
    train_topics = retrieval.multi_hot([post.topics for post in train], vocabulary)
    centroid = retrieval.tfidf_centroid_scores(vectorizer, train_documents, train_topics, documents)
    name = retrieval.tfidf_name_scores(vectorizer, vocabulary, documents)
    similarities = retrieval.tfidf_similarities(vectorizer, documents, train_documents)
    results = {
        "tfidf_centroid": evaluate(centroid, similarities, queries, train, vocabulary),
        "tfidf_name": evaluate(name, None, queries, train, vocabulary),
    }
    if clean:
        clean_posts, columns = clean
        clean_documents = [post.document for post in clean_posts]
        for key, scores in (
            (
                "tfidf_centroid",
                retrieval.tfidf_centroid_scores(vectorizer, train_documents, train_topics, clean_documents),
            ),
            ("tfidf_name", retrieval.tfidf_name_scores(vectorizer, vocabulary, clean_documents)),
        ):
            results[key]["clean"] = evaluate(scores, None, clean_posts, train, vocabulary, columns)
    return results


def cdtom_results(model, train, queries, vocabulary, clean):
    """``{topic index: metrics}`` for each of :data:`tfcl.apps.weibo.TOPIC_INDEXES` (the keys of 博文预测话题).

    The scores are those of :class:`tfcl.apps.TopicPredictor` and :class:`tfcl.apps.SimilarPosts` (cosines of the
    document embeddings with the topic keys and the training posts), each set of posts embedded once.
    """
    from tfcl.apps.weibo import TOPIC_INDEXES, embed_strings, topic_keys
    from tfcl.eval import retrieval

    def documents(posts):
        return embed_strings(model.embed_documents, [post.document for post in posts])

    names = embed_strings(model.embed_topics, vocabulary)
    index = documents(train)
    carried = retrieval.multi_hot([post.topics for post in train], vocabulary)
    query_embeddings = documents(queries)
    similarities = query_embeddings @ index.T
    clean_embeddings = documents(clean[0]) if clean else None
    results = {}
    for name in TOPIC_INDEXES:
        keys = topic_keys(names, index, carried, name)
        results[name] = evaluate(query_embeddings @ keys.T, similarities, queries, train, vocabulary)
        if clean:
            results[name]["clean"] = evaluate(clean_embeddings @ keys.T, None, clean[0], train, vocabulary, clean[1])
    return results


class LastWeights(keras.callbacks.Callback):
    """Keeps the weights of the last finished epoch (``EarlyStopping`` restores the best ones when training ends)
    and stops training after the first epoch that ends past ``budget_seconds`` of training."""

    def __init__(self, budget_seconds=None):
        super().__init__()
        self.budget_seconds = budget_seconds
        self.weights = None

    def on_train_begin(self, logs=None):
        self.began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.weights = self.model.get_weights()
        if self.budget_seconds is not None and time.perf_counter() - self.began > self.budget_seconds:
            self.model.stop_training = True


def index_timing(sizes, dim=128, batch=32, repeats=5, k=10):
    """Milliseconds per exact top-k query batch against random unit vectors (matmul + tf.math.top_k)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    queries = tf.math.l2_normalize(tf.constant(rng.normal(size=(batch, dim)), tf.float32), axis=-1)
    timings = {}
    for size in sizes:
        keys = tf.math.l2_normalize(tf.constant(rng.normal(size=(size, dim)), tf.float32), axis=-1)
        search = tf.function(lambda q, keys=keys: tf.math.top_k(tf.matmul(q, keys, transpose_b=True), k=k))
        search(queries)  # trace
        start = time.perf_counter()
        for _ in range(repeats):
            search(queries)[0].numpy()
        timings[size] = 1000 * (time.perf_counter() - start) / repeats
        del keys
    return timings


# --- The temporal protocol (--days): see the module docstring ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DayPost:
    """A distinct document of the day files: the day it first appeared and the hashtags of all its copies."""

    day: str
    document: str
    topics: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class TemporalSplit:
    """Distinct training posts (days ≤ ``train_end``), distinct evaluation posts (the window after it, documents
    not among the training ones), the seen topics (of ≥ ``SEEN_MIN_POSTS`` training posts) and the new ones
    (in no post of a day ≤ ``train_end``, in ≥ ``NEW_MIN_POSTS`` evaluation posts)."""

    train: list[DayPost]
    evaluation: list[DayPost]
    seen: list[str]
    new: list[str]


@dataclasses.dataclass(frozen=True)
class Tasks:
    """The evaluation posts of each task (seeded samples under the caps) and the few-shot keys."""

    seen_queries: list[DayPost]
    new_queries: list[DayPost]  # also the few-shot queries: none of them is a few-shot key
    fewshot_keys: dict[str, list[DayPost]]
    similar_index: list[DayPost]
    similar_queries: list[int]  # positions in similar_index


def read_day_posts(files):
    """``[(day, WeiboPost)]`` of the day files in order (malformed records skipped) and the number skipped."""
    from tfcl.data import weibo
    from tfcl.data.zh_text import day_of

    posts, dead_letters = [], []
    for path in files:
        posts += [(day_of(path), post) for post in weibo.read_posts(path, dead_letters=dead_letters)]
    return posts, len(dead_letters)


def distinct_posts(dated_posts, first_day, last_day):
    """One :class:`DayPost` per document of ``MIN_DOCUMENT_CHARS``+ characters posted from ``first_day`` to
    ``last_day``: its first day, the union of the hashtags of its copies (reposts)."""
    by_document = {}
    for day, post in dated_posts:
        if first_day <= day <= last_day and len(post.document) >= MIN_DOCUMENT_CHARS:
            day0, topics = by_document.get(post.document, (day, {}))
            by_document[post.document] = (min(day0, day), {**topics, **dict.fromkeys(post.topics)})
    return [DayPost(day, document, tuple(topics)) for document, (day, topics) in by_document.items()]


def temporal_split(dated_posts, train_end, eval_end, seen_min=SEEN_MIN_POSTS, new_min=NEW_MIN_POSTS):
    """The :class:`TemporalSplit` of ``(day, WeiboPost)`` pairs: train on days ≤ ``train_end``, evaluate on the
    days after it up to ``eval_end``."""
    train = distinct_posts(dated_posts, "", train_end)
    documents = {post.document for post in train}
    evaluation = [
        post for post in distinct_posts(dated_posts, train_end + "~", eval_end) if post.document not in documents
    ]
    counts = collections.Counter(topic for post in train for topic in post.topics)
    seen = sorted(topic for topic, n in counts.items() if n >= seen_min)
    before = {topic for day, post in dated_posts if day <= train_end for topic in post.topics}
    window = collections.Counter(topic for post in evaluation for topic in post.topics if topic not in before)
    new = sorted(topic for topic, n in window.items() if n >= new_min)
    return TemporalSplit(train, evaluation, seen, new)


def carrying(posts, topics):
    """The posts carrying at least one of ``topics``."""
    topics = set(topics)
    return [post for post in posts if topics.intersection(post.topics)]


def sample(items, cap, rng):
    """Up to ``cap`` of ``items``, a seeded random choice kept in their order (all of them if ``cap`` is None)."""
    if cap is None or len(items) <= cap:
        return list(items)
    return [items[i] for i in sorted(rng.choice(len(items), cap, replace=False))]


def build_tasks(split, caps, fewshot=FEW_SHOT, seed=0):
    """The :class:`Tasks` of a split; ``caps``: ``{"seen", "new", "similar"}`` query caps (None: no cap)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    keys = {}
    for topic in split.new:
        posts = carrying(split.evaluation, [topic])
        keys[topic] = [posts[i] for i in sorted(rng.choice(len(posts), fewshot, replace=False))]
    key_documents = {post.document for posts in keys.values() for post in posts}
    new_queries = [post for post in carrying(split.evaluation, split.new) if post.document not in key_documents]
    index = [post for post in split.evaluation if post.topics]
    return Tasks(
        seen_queries=sample(carrying(split.evaluation, split.seen), caps["seen"], rng),
        new_queries=sample(new_queries, caps["new"], rng),
        fewshot_keys=keys,
        similar_index=index,
        similar_queries=sample(range(len(index)), caps["similar"], rng),
    )


class Embedder:
    """L2-normalised rows (dense, or SciPy sparse) for documents and topic names: what every task compares.

    ``documents(texts)`` embeds posts, ``topics(names)`` hashtag names. TF-IDF: :func:`tfidf_embedder`;
    CD-TOM: :func:`cdtom_embedder`; chance: :func:`random_embedder`.
    """

    def __init__(self, documents, topics):
        self.documents = documents
        self.topics = topics


def tfidf_embedder(train_documents):
    """TF-IDF of character 1–2-grams, sublinear tf, fitted on ``train_documents``, for documents and names."""
    from tfcl.eval import retrieval

    vectorizer = retrieval.char_tfidf(train_documents)
    return Embedder(vectorizer.transform, vectorizer.transform)


def cdtom_embedder(model):
    """CD-TOM's document tower for documents, its topic tower for names."""
    from tfcl.apps.weibo import embed_strings

    return Embedder(
        lambda texts: embed_strings(model.embed_documents, texts),
        lambda names: embed_strings(model.embed_topics, names),
    )


def hybrid_embedder(first, second, weight=0.5):
    """Both embedders' rows side by side, scaled by √weight and √(1 − weight): cosines are ``weight`` × the first's
    + (1 − ``weight``) × the second's (e.g. CD-TOM and TF-IDF)."""
    from scipy import sparse

    def joined(embed_first, embed_second):
        return lambda texts: sparse.hstack(
            [weight**0.5 * sparse.csr_matrix(embed_first(texts)), (1 - weight) ** 0.5 * embed_second(texts)],
            format="csr",
        )

    return Embedder(joined(first.documents, second.documents), joined(first.topics, second.topics))


def random_embedder(dim=64, seed=0):
    """Random unit vectors: every ranking by chance."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def embed(texts):
        vectors = rng.normal(size=(len(texts), dim))
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    return Embedder(embed, embed)


def dense(matrix):
    return matrix.toarray() if hasattr(matrix, "toarray") else matrix


def centroids(embed, texts, memberships, batch=16384):
    """``[groups, d]`` normalised sums of the embeddings (``embed(texts)``) of each group's texts (``memberships``:
    ``[texts, groups]`` 0/1, SciPy sparse), summed ``batch`` texts at a time: a 9,216-wide embedding of 220k
    training posts (8 GB) is never held whole."""
    from sklearn.preprocessing import normalize

    sums = 0
    for start in range(0, len(texts), batch):
        sums = sums + memberships[start : start + batch].T @ embed(texts[start : start + batch])
    return normalize(sums)


def memberships(topic_lists, vocabulary):
    """``[posts, topics]`` sparse 0/1: which vocabulary topics each post carries."""
    import numpy as np
    from scipy import sparse

    index = {topic: i for i, topic in enumerate(vocabulary)}
    rows, columns = [], []
    for row, topics in enumerate(topic_lists):
        for topic in dict.fromkeys(topics):
            if topic in index:
                rows.append(row)
                columns.append(index[topic])
    shape = (len(topic_lists), len(vocabulary))
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=shape)


def ranked(scores, queries, vocabulary):
    """``{"ranks", "hit1", "hit5", "mrr", "posts", "hit5_by_day"}`` of ``[queries, topics]`` ``scores`` (each query's
    best-ranked topic of ``vocabulary`` that it carries; ties count against it)."""
    import numpy as np

    from tfcl.eval import retrieval

    ranks = retrieval.topic_ranks(dense(scores), dense(memberships([post.topics for post in queries], vocabulary)) > 0)
    days = np.array([post.day for post in queries])
    return {
        "ranks": ranks,
        "hit1": float(np.mean(ranks <= 1)),
        "hit5": float(np.mean(ranks <= 5)),
        "mrr": float(np.mean(1.0 / ranks)),
        "posts": len(ranks),
        "hit5_by_day": {str(day): float(np.mean(ranks[days == day] <= 5)) for day in np.unique(days)},
    }


def same_topic_shares(embeddings, topic_lists, queries, k=10, batch=256):
    """Each query's share of its ``k`` nearest other posts (by cosine of ``embeddings``) sharing a topic with it.

    ``queries``: positions in ``embeddings`` / ``topic_lists``; a query is never its own neighbour (the posts are
    distinct documents, so no exact duplicate of it is either).
    """
    import numpy as np

    topic_sets = [set(topics) for topics in topic_lists]
    shares = []
    for start in range(0, len(queries), batch):
        positions = np.asarray(queries[start : start + batch])
        similarities = np.array(dense(embeddings[positions] @ embeddings.T), np.float64)
        similarities[np.arange(len(positions)), positions] = -np.inf
        nearest = np.argpartition(-similarities, k, axis=1)[:, :k]
        shares += [
            np.mean([bool(topic_sets[query] & topic_sets[neighbour]) for neighbour in row])
            for query, row in zip(positions, nearest)
        ]
    return np.array(shares)


def evaluate_days(embedder, split, tasks, seen_keys="centroid"):
    """The row of the four tasks for one embedder (``seen_keys``: ``"centroid"``, ``"name"`` or ``"combined"``,
    the seen-topic keys; see the module docstring), with ``per_query``: each query's value of the figures of
    :data:`PAIRED` (for :func:`compared`; not written to the results)."""
    from sklearn.preprocessing import normalize

    train = carrying(split.train, split.seen)
    keys = {}
    if seen_keys in ("centroid", "combined"):
        keys["centroid"] = centroids(
            embedder.documents,
            [post.document for post in train],
            memberships([post.topics for post in train], split.seen),
        )
    if seen_keys in ("name", "combined"):
        keys["name"] = embedder.topics(split.seen)
    seen_keys_matrix = normalize(sum(keys.values())) if len(keys) > 1 else keys[seen_keys]
    seen = ranked(
        embedder.documents([post.document for post in tasks.seen_queries]) @ seen_keys_matrix.T,
        tasks.seen_queries,
        split.seen,
    )
    new_documents = embedder.documents([post.document for post in tasks.new_queries])
    new = ranked(new_documents @ embedder.topics(split.new).T, tasks.new_queries, split.new)
    key_posts = [post for topic in split.new for post in tasks.fewshot_keys[topic]]
    fewshot_keys = centroids(
        embedder.documents,
        [post.document for post in key_posts],
        memberships([[post_topic] for post_topic in split.new for _ in tasks.fewshot_keys[post_topic]], split.new),
    )
    fewshot = ranked(new_documents @ fewshot_keys.T, tasks.new_queries, split.new)
    index = tasks.similar_index
    similar = same_topic_shares(
        embedder.documents([post.document for post in index]), [post.topics for post in index], tasks.similar_queries
    )
    per_query = {"seen_hit5": seen.pop("ranks") <= 5, "new_hit1": new.pop("ranks") <= 1, "similar_p10": similar}
    fewshot.pop("ranks")
    return {
        **{f"seen_{key}": value for key, value in seen.items()},
        **{f"new_{key}": value for key, value in new.items()},
        **{f"fewshot_{key}": value for key, value in fewshot.items()},
        "similar_p10": float(similar.mean()),
        "similar_queries": len(tasks.similar_queries),
        "similar_index": len(index),
        "seen_keys": seen_keys,
        "per_query": per_query,
    }


def paired_difference(values, baseline, draws=2000, seed=0):
    """``{"difference", "ci95", "better", "worse"}``: the mean of ``values − baseline`` over the same queries, its
    95% bootstrap interval (queries drawn with replacement ``draws`` times) and how many queries it is above / below
    the baseline on."""
    import numpy as np

    differences = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (draws, len(differences)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "difference": float(differences.mean()),
        "ci95": [float(low), float(high)],
        "better": int(np.sum(differences > 0)),
        "worse": int(np.sum(differences < 0)),
    }


def compared(result, baseline):
    """``result`` (:func:`evaluate_days`) without its per-query values, with ``vs_tfidf``: the paired difference
    (:func:`paired_difference`) of each figure of :data:`PAIRED` against ``baseline``, TF-IDF's per-query values."""
    per_query = result.pop("per_query")
    return {**result, "vs_tfidf": {key: paired_difference(per_query[key], baseline[key]) for key in PAIRED}}


def train_days_cdtom(split, run_dir, args, temperature):
    """CD-TOM trained on the training posts' seen topics (fixed epochs, no early stopping: the settings were
    chosen on held-out training days); returns ``(model, minutes)``. A ``run_dir`` that holds a finished run
    (``model.keras`` and ``train_minutes.json``, e.g. of a run stopped during its evaluation) is loaded, not
    retrained."""
    from tfcl.recipes.cdtom import document_pairs, fit_cdtom

    finished = run_dir / "train_minutes.json"
    if finished.is_file() and (run_dir / "model.keras").is_file():
        print(f"{run_dir}: trained before, loading model.keras", flush=True)
        return keras.saving.load_model(run_dir / "model.keras"), json.loads(finished.read_text())["minutes"]
    train = carrying(split.train, split.seen)
    began = time.perf_counter()
    model, _ = fit_cdtom(
        document_pairs(
            [post.document for post in train],
            [post.topics for post in train],
            split.seen,
            span_rate=args.span_rate,
            seed=0,
        ),
        None,
        split.seen,
        run_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=None,
        temperature=temperature,
        shared_towers=args.shared_towers,
        text_tower=args.text_tower,
        ngram_buckets=args.ngram_buckets,
        ngram_dim=args.ngram_dim,
        max_ngrams=args.max_ngrams,
        lexical_dim=args.lexical_dim,
        lexical_weight=args.lexical_weight,
        projection_dim=args.projection_dim or None,
        dropout=args.dropout,
        hard_negative_groups=args.hard_negative_groups,
        callbacks=[LastWeights(None if args.train_budget is None else 60 * args.train_budget)],
        verbose=2,
    )
    minutes = (time.perf_counter() - began) / 60
    finished.write_text(json.dumps({"minutes": minutes}))
    return model, minutes


def run_days(args):
    """The temporal benchmark: rows for TF-IDF, chance and CD-TOM (one per τ and seen-topic key, and one per τ and
    hybrid weight)."""
    from tfcl.data.zh_text import weibo_day_files

    start = time.perf_counter()
    dated_posts, dead_lettered = read_day_posts(weibo_day_files())
    split = temporal_split(dated_posts, args.train_end, args.eval_end)
    tasks = build_tasks(split, {"seen": args.seen_cap, "new": args.new_cap, "similar": args.similar_cap})
    print(f"read {len(dated_posts)} posts in {time.perf_counter() - start:.0f} s", flush=True)
    tfidf = tfidf_embedder([post.document for post in split.train])
    tfidf_row = evaluate_days(tfidf, split, tasks)
    baseline = tfidf_row.pop("per_query")
    rows = [
        {"model": "tfidf", **tfidf_row},
        {"model": "chance", **compared(evaluate_days(random_embedder(), split, tasks), baseline)},
    ]
    print(rows[0], flush=True)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="weibo_days_"))
    for temperature in args.temperatures:
        model, minutes = train_days_cdtom(split, work / f"cdtom_t{temperature}", args, temperature)
        lexical_weights = (args.lexical_eval_weights or [args.lexical_weight]) if args.lexical_dim else [None]
        for lexical_weight in lexical_weights:
            lexical = with_lexical_weight(model, lexical_weight)
            for keys in args.seen_keys:
                name = f"cdtom-{args.text_tower}{lexical} τ={temperature} {keys} keys"
                rows.append(
                    {"model": name, **compared(evaluate_days(cdtom_embedder(model), split, tasks, keys), baseline)}
                )
                rows[-1].update(train_minutes=minutes, temperature=temperature, lexical_weight=lexical_weight)
                print(rows[-1], flush=True)
        for weight in args.hybrid_weights:
            name = f"cdtom+tfidf hybrid {weight:g} τ={temperature} centroid keys"
            hybrid = hybrid_embedder(cdtom_embedder(model), tfidf, weight)
            rows.append({"model": name, **compared(evaluate_days(hybrid, split, tasks), baseline)})
            rows[-1].update(train_minutes=minutes, temperature=temperature, hybrid_weight=weight)
            print(rows[-1], flush=True)
    setup = {
        **{key: value for key, value in vars(args).items() if key != "work_dir"},
        "optimizer": "LazyAdamW" if args.text_tower == "ngram" else "AdamW",  # fit_cdtom's choice
        "posts_read": len(dated_posts),
        "dead_lettered": dead_lettered,
        "train_posts": len(split.train),
        "evaluation_posts": len(split.evaluation),
        "seen_topics": len(split.seen),
        "new_topics": len(split.new),
        "seen_min_posts": SEEN_MIN_POSTS,
        "new_min_posts": NEW_MIN_POSTS,
        "fewshot": FEW_SHOT,
        "total_minutes": (time.perf_counter() - start) / 60,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
    }
    results = {"rows": rows, "ann": ann_rows(), "setup": setup}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_days(results, args.name)
    plot_days(rows, RESULTS / f"{args.name}.png")
    print(days_markdown(results))


def with_lexical_weight(model, weight):
    """Set the λ of CD-TOM's n-gram towers' lexical channels to ``weight`` (None: no channel, nothing to set);
    returns the row-name part that says so."""
    if weight is None:
        return ""
    for tower in (model.encoder, model.topic_tower):  # the same tower twice when shared
        tower.lexical_weight = weight
    return f" lexical {model.encoder.lexical_dim} λ={weight:g}"


def ann_rows():
    """The rows of results/ann.json (benchmarks/ann.py), copied, not recomputed."""
    return json.loads((RESULTS / "ann.json").read_text())["ann"]


def write_days(results, name):
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    (RESULTS / f"{name}.md").write_text(days_markdown(results))


def refresh_ann(name):
    """Copy the current results/ann.json rows into results/<name>.json and rewrite its Markdown (no training)."""
    results = json.loads((RESULTS / f"{name}.json").read_text())
    results["ann"] = ann_rows()
    write_days(results, name)


PAIRED = ("seen_hit5", "new_hit1", "similar_p10")  # the figures compared query by query with TF-IDF's
DAYS_COLUMNS = (
    ("seen_hit1", "seen hit@1"),
    ("seen_hit5", "seen hit@5"),
    ("seen_mrr", "seen MRR"),
    ("new_hit1", "new hit@1"),
    ("new_hit5", "new hit@5"),
    ("new_mrr", "new MRR"),
    ("fewshot_hit1", "5-shot hit@1"),
    ("fewshot_hit5", "5-shot hit@5"),
    ("similar_p10", "similar P@10"),
)


def days_markdown(results):
    setup, rows = results["setup"], results["rows"]
    table = [
        "| model | " + " | ".join(label for _, label in DAYS_COLUMNS) + " | training (min) |",
        "|---" * (len(DAYS_COLUMNS) + 2) + "|",
        *[
            f"| {row['model']} | "
            + " | ".join(f"{row[key]:.3f}" for key, _ in DAYS_COLUMNS)
            + f" | {row['train_minutes']:.1f} |"
            if "train_minutes" in row
            else f"| {row['model']} | " + " | ".join(f"{row[key]:.3f}" for key, _ in DAYS_COLUMNS) + " | – |"
            for row in rows
        ],
    ]
    first = rows[0]
    return (
        "\n".join(
            [
                f"# Weibo topics across days (`benchmarks/weibo_topics.py --days`): {setup['name']}",
                "",
                f"Train on days ≤ {setup['train_end']} ({setup['train_posts']:,} distinct posts, "
                f"{setup['seen_topics']:,} seen topics of ≥ {setup['seen_min_posts']} posts), evaluate on the days "
                f"after it up to {setup['eval_end']} ({setup['evaluation_posts']:,} distinct posts not in training; "
                f"{setup['new_topics']} new topics of ≥ {setup['new_min_posts']} posts), hashtags hidden. Queries: "
                f"{first['seen_posts']:,} seen-topic posts, {first['new_posts']:,} new-topic posts (new and "
                f"{setup['fewshot']}-shot), {first['similar_queries']:,} similar-post queries over an index of "
                f"{first['similar_index']:,}. {setup['posts_read']:,} posts read ({setup['dead_lettered']} malformed "
                f"skipped); whole run {setup['total_minutes']:.0f} min on {setup['machine']}. Protocol: the module "
                "docstring.",
                "",
                *table,
                *paired_markdown(rows),
                "",
                f"CD-TOM: {setup['text_tower']} towers ({'shared' if setup['shared_towers'] else 'separate'}"
                + (
                    f"; character 1–2-grams hashed into {setup['ngram_buckets']:,} buckets, {setup['ngram_dim']} "
                    f"wide, the first {setup.get('max_ngrams', 256)} n-grams of a text, IDF-initialised weights, "
                    f"n-gram dropout {setup['dropout']}"
                    if setup["text_tower"] == "ngram"
                    else ""
                )
                + "), "
                + (f"linear head to {setup['projection_dim']} dimensions" if setup["projection_dim"] else "no head")
                + (
                    f", a lexical channel {setup['lexical_dim']} wide trained with λ = {setup['lexical_weight']} "
                    "(a count sketch of the n-grams with learned IDF-initialised weights beside the dense mean; rows "
                    "give the λ they were evaluated with)"
                    if setup.get("lexical_dim")
                    else ""
                )
                + (
                    f", span pairs for {setup['span_rate']:.0%} of the posts (a 2–8 character span of the post as "
                    "its topic name)"
                    if setup.get("span_rate")
                    else ""
                )
                + (
                    f", each batch from one of {setup['hard_negative_groups']} groups of similar topics (k-means of "
                    "the untrained tower's topic centroids; hard negatives)"
                    if setup.get("hard_negative_groups", 0) > 1
                    else ""
                )
                + f", {setup['epochs']} epoch(s) of batch {setup['batch_size']}, "
                + setup.get("optimizer", "AdamW")
                + f" {setup['learning_rate']} (warm-up, cosine); seen-topic keys as the row names them"
                + (
                    "; hybrid rows: the weighted sum of CD-TOM's and TF-IDF's cosines (CD-TOM's weight given)"
                    if setup.get("hybrid_weights")
                    else ""
                )
                + ". chance: random unit vectors.",
                *(["", f"Note: {setup['note']}"] if setup.get("note") else []),
                *ann_markdown(results.get("ann", [])),
            ]
        )
        + "\n"
    )


def paired_markdown(rows):
    """The table of the rows' paired differences against TF-IDF (none for rows without them)."""
    compared_rows = [row for row in rows if "vs_tfidf" in row]
    if not compared_rows:
        return []

    def cell(paired):
        low, high = paired["ci95"]
        return f"{paired['difference']:+.3f} [{low:+.3f}, {high:+.3f}] {paired['better']:,} / {paired['worse']:,}"

    return [
        "",
        "Against TF-IDF on the same queries: difference of the means, its 95% bootstrap interval (queries drawn with "
        "replacement) and the queries above / below TF-IDF.",
        "",
        "| model | " + " | ".join(label for key, label in DAYS_COLUMNS if key in PAIRED) + " |",
        "|---" * (len(PAIRED) + 1) + "|",
        *[
            f"| {row['model']} | " + " | ".join(cell(row["vs_tfidf"][key]) for key in PAIRED) + " |"
            for row in compared_rows
        ],
    ]


def ann_markdown(ann):
    """The similar-posts index at scale: results/ann.json's rows at the largest size, as copied."""
    if not ann:
        return []
    largest = max(row["vectors"] for row in ann)
    return [
        "",
        f"Similar posts at scale (`benchmarks/ann.py`, results/ann.md): IVF against exact search at {largest:,} "
        "vectors; the JSON's `ann` list holds every size.",
        "",
        "| batch | candidates/query | first-stage dims | recall@10 | speedup |",
        "|---|---|---|---|---|",
        *[
            f"| {row['batch']} | {row['candidates_per_query']:,} | {row['scan_dims']} of {row['dims']} | "
            f"{row['recall_at_10']:.3f} | {row['speedup']:.1f}× |"
            for row in ann
            if row["vectors"] == largest
        ],
    ]


def plot_days(rows, path):
    """hit@5 per evaluation day (seen and new topics) of TF-IDF and the CD-TOM row (not hybrid) of the best seen
    hit@5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cdtom = [row for row in rows if row["model"].startswith("cdtom-")]
    shown = [row for row in rows if row["model"] == "tfidf"] + sorted(cdtom, key=lambda row: -row["seen_hit5"])[:1]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for axis, task in zip(axes, ("seen", "new")):
        for row in shown:
            days = sorted(row[f"{task}_hit5_by_day"])
            axis.plot(
                [day[5:] for day in days], [row[f"{task}_hit5_by_day"][day] for day in days], "o-", label=row["model"]
            )
        axis.set_title(f"{task} topics: hit@5 per evaluation day")
        axis.tick_params(axis="x", rotation=60)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", help="Weibo JSON lines or CSV (default: a generated corpus)")
    parser.add_argument("--posts", type=int, default=4000, help="posts of the generated corpus")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--temperatures", type=float, nargs="*", default=[0.1])
    parser.add_argument("--shared-towers", action="store_true", help="one tower for documents and topics")
    parser.add_argument("--document-length", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument(
        "--patience",
        type=int,
        default=1,
        help="epochs without a lower validation loss before stopping (the best epoch is kept)",
    )
    parser.add_argument(
        "--train-budget", type=float, help="minutes: no further epoch starts once one training run has taken this long"
    )
    parser.add_argument(
        "--index-sizes",
        type=int,
        nargs="*",
        default=[10_000, 100_000, 1_000_000],
        help="sizes of the exact top-k timing (none: skip)",
    )
    parser.add_argument("--days", action="store_true", help="the temporal benchmark on the real day files")
    parser.add_argument("--train-end", default=TRAIN_END, help="--days: last training day")
    parser.add_argument("--eval-end", default=EVAL_END, help="--days: last evaluation day")
    parser.add_argument("--seen-cap", type=int, default=6000, help="--days: seen-topic queries (seeded sample)")
    parser.add_argument("--new-cap", type=int, default=6000, help="--days: new-topic and few-shot queries")
    parser.add_argument("--similar-cap", type=int, default=2000, help="--days: similar-post queries")
    parser.add_argument("--text-tower", default="ngram", choices=("bert", "ngram"), help="--days: CD-TOM's towers")
    parser.add_argument("--ngram-buckets", type=int, default=2**17, help="--days: n-gram towers' hash buckets")
    parser.add_argument("--ngram-dim", type=int, default=128, help="--days: n-gram towers' width")
    parser.add_argument(
        "--max-ngrams", type=int, default=256, help="--days: n-grams kept per text (unigrams first, then bigrams)"
    )
    parser.add_argument(
        "--projection-dim", type=int, default=128, help="--days: CD-TOM's embedding width (0: no head, the tower's)"
    )
    parser.add_argument("--dropout", type=float, default=0.1, help="--days: tower dropout (n-grams: whole n-grams)")
    parser.add_argument(
        "--hard-negative-groups",
        type=int,
        default=0,
        help="--days: > 1: each batch from one of that many groups of similar topics (hard negatives)",
    )
    parser.add_argument(
        "--span-rate",
        type=float,
        default=0.0,
        help="--days: share of training posts that also pair with a random 2–8 character span of their own text",
    )
    parser.add_argument(
        "--lexical-dim", type=int, default=0, help="--days: width of the n-gram tower's lexical channel (0: none)"
    )
    parser.add_argument("--lexical-weight", type=float, default=0.5, help="--days: the lexical channel's share λ")
    parser.add_argument(
        "--lexical-eval-weights", type=float, nargs="*", default=[], help="--days: λ of each evaluation row"
    )
    parser.add_argument(
        "--seen-keys",
        nargs="+",
        default=["centroid", "combined"],
        choices=("name", "centroid", "combined"),
        help="--days: CD-TOM's seen-topic keys, a row each",
    )
    parser.add_argument(
        "--hybrid-weights", type=float, nargs="*", default=[], help="--days: CD-TOM's weights in hybrid rows"
    )
    parser.add_argument("--name", help="results/<name>.{md,json} (default weibo_days with --days, else weibo_topics)")
    parser.add_argument(
        "--refresh-ann", action="store_true", help="--days: copy results/ann.json's rows into results/<name>.json"
    )
    parser.add_argument("--note", help="a remark printed with the results (e.g. how loaded the machine was)")
    parser.add_argument("--work-dir", help="ingestion output and runs (default: a temporary folder)")
    args = parser.parse_args()
    args.name = args.name or ("weibo_days" if args.days else "weibo_topics")
    if args.days and args.refresh_ann:
        refresh_ann(args.name)
        return
    if args.days:
        run_days(args)
        return

    from tfcl.data import weibo_ingest, weibo_sample
    from tfcl.recipes.cdtom import MAX_TOPICS_PER_POST, read_topic_vocabulary, train_cdtom

    start = time.perf_counter()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="weibo_topics_"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = args.input
    if corpus is None:
        corpus = str(work / "generated.jsonl")
        weibo_sample.write_sample(corpus, posts=args.posts, seed=0)
    ingested = work / "ingested"
    counts = weibo_ingest.run_ingestion([corpus], ingested, num_shards=2)
    ingest_seconds = time.perf_counter() - start
    vocabulary = read_topic_vocabulary(ingested / weibo_ingest.TOPIC_VOCAB_FILE)
    train_all, eval_all = load_posts(ingested, "train"), load_posts(ingested, "eval")
    train = labelled(train_all, vocabulary, MAX_TOPICS_PER_POST)
    queries = labelled(eval_all, vocabulary, MAX_TOPICS_PER_POST)
    clean = None
    if args.input:
        clean_posts, clean_topics = clean_set(train_all + eval_all, train_all, eval_all)
        clean = (clean_posts, [vocabulary.index(topic) for topic in clean_topics])

    results = {"tfidf": tfidf_results(train, queries, vocabulary, clean), "cdtom": {}}
    files = {split: sorted(map(str, (ingested / split).glob("*.tfrecord.gz"))) for split in weibo_ingest.SPLITS}
    for temperature in args.temperatures:
        run = work / f"cdtom_t{temperature}"
        last = LastWeights(None if args.train_budget is None else 60 * args.train_budget)
        began = time.perf_counter()
        model, history = train_cdtom(
            files["train"],
            files["eval"],
            ingested / weibo_ingest.TOPIC_VOCAB_FILE,
            run,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            patience=args.patience,
            temperature=temperature,
            shared_towers=args.shared_towers,
            document_length=args.document_length,
            callbacks=[last],
            verbose=2,
        )
        train_seconds = time.perf_counter() - began
        val_loss = [float(value) for value in history.history["val_loss"]]
        best_epoch = 1 + val_loss.index(min(val_loss))
        best = latest = cdtom_results(model, train, queries, vocabulary, clean)  # the weights train_cdtom returns
        if best_epoch < len(val_loss):
            model.set_weights(last.weights)
            latest = cdtom_results(model, train, queries, vocabulary, clean)
        results["cdtom"][str(temperature)] = {
            "best_epoch": {"epoch": best_epoch, **best},
            "last_epoch": {"epoch": len(val_loss), **latest},
            "train_seconds": train_seconds,
            "val_loss": val_loss,
            "final_logs": {name: float(values[-1]) for name, values in history.history.items()},
        }
    train_documents = {post.document for post in train}
    results["index_timing_ms"] = index_timing(args.index_sizes) if args.index_sizes else {}
    results["setup"] = {
        **{key: value for key, value in vars(args).items() if key != "work_dir"},
        "corpus": args.input or f"generated by tfcl.data.weibo_sample ({args.posts} posts, seed 0): not Weibo data",
        "ingestion": counts,
        "ingest_seconds": ingest_seconds,
        "vocabulary_topics": len(vocabulary),
        "train_posts": len(train),
        "held_out_posts": len(queries),
        "held_out_with_a_training_document": sum(post.document in train_documents for post in queries),
        "clean": None if clean is None else {"posts": len(clean[0]), "topics": len(clean[1])},
        "total_seconds": time.perf_counter() - start,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    (RESULTS / f"{args.name}.md").write_text(markdown(results))
    print(markdown(results))


def markdown(results):
    setup = results["setup"]
    clean = setup["clean"]

    def row(name, result):
        cells = [f"{result[key]:.3f}" if key in result else "–" for key in ("hit@1", "hit@5", "mrr", "precision@10")]
        if clean:
            cells += [f"{result['clean'][key]:.3f}" if "clean" in result else "–" for key in ("hit@1", "hit@5")]
        return f"| {name} | " + " | ".join(cells) + " |"

    header = "| model | hit@1 | hit@5 | MRR | precision@10 |"
    rule = "|---|---|---|---|---|"
    if clean:
        header += f" clean {clean['topics']}-topic hit@1 | clean hit@5 |"
        rule += "---|---|"
    towers = "shared tower" if setup["shared_towers"] else "separate document/topic towers"
    rows = [
        row("TF-IDF, topic centroid", results["tfidf"]["tfidf_centroid"]),
        row("TF-IDF, topic name", results["tfidf"]["tfidf_name"]),
    ]
    for t, r in results["cdtom"].items():
        last, best = r["last_epoch"]["epoch"], r["best_epoch"]["epoch"]
        epochs = {"last_epoch": f"last epoch ({last})", "best_epoch": f"best epoch ({best})"}
        if last == best:
            epochs = {"best_epoch": f"epoch {best} (last and best)"}
        rows += [
            row(f"CD-TOM τ={t}, {label}, {index} keys", r[weights][index])
            for weights, label in epochs.items()
            for index in ("name", "centroid", "combined")
        ]
    trainings = [
        f"τ={t}: {r['train_seconds']:.0f} s, validation loss by epoch "
        + " / ".join(f"{loss:.3f}" for loss in r["val_loss"])
        for t, r in results["cdtom"].items()
    ]
    timing = results["index_timing_ms"]
    lines = [
        f"# Weibo topics benchmark (`benchmarks/weibo_topics.py`): {setup['name']}",
        "",
        f"Corpus: {setup['corpus']}. Ingestion: {setup['ingestion']['read']} records read, "
        f"{setup['ingestion']['train']} train / {setup['ingestion']['eval']} eval posts, "
        f"{setup['ingestion']['dead_lettered']} dead-lettered, {setup['ingestion']['duplicates']} duplicates; "
        f"{setup['vocabulary_topics']} vocabulary topics. Training: {setup['train_posts']} posts; evaluation: "
        f"{setup['held_out_posts']} held-out posts, hashtags hidden (the documents of "
        f"{setup['held_out_with_a_training_document']} of them also occur among the training documents)"
        + (f"; clean set {clean['posts']} posts over {clean['topics']} topics" if clean else "")
        + ".",
        "",
        f"CD-TOM: {towers}, 2-layer 128-wide random-init BERT, mean pooling, linear 128-d heads, learned "
        f"WordPiece vocabulary, up to {setup['epochs']} epochs of batch {setup['batch_size']}"
        + (f" and {setup['train_budget']:g} min" if setup.get("train_budget") else "")
        + ", AdamW "
        f"{setup['learning_rate']} (cosine), document length {setup['document_length']} tokens, stopping after "
        f"{setup['patience']} epoch(s) without a lower validation loss, on {setup['machine']}. Training "
        + "; ".join(trainings)
        + f". Whole run {setup['total_seconds']:.0f} s (ingestion "
        f"{setup['ingest_seconds']:.0f} s).",
        *(["", f"Note: {setup['note']}"] if setup.get("note") else []),
        "",
        header,
        rule,
        *rows,
        "",
        "Topic prediction ranks all vocabulary topics (clean set: its own topics only); precision@10 searches the "
        "training posts. CD-TOM rows: the weights of the last epoch trained or of the epoch with the lowest "
        "validation loss (on the eval split the held-out posts come from), and the topic keys of "
        "`tfcl.apps.weibo.topic_keys`: the topic tower's embedding of the hashtag (name), the normalised mean "
        "document embedding of the training posts carrying the topic (centroid), or their normalised sum (combined). "
        "See the module docstring for the protocols.",
    ]
    if timing:
        lines += [
            "",
            "Exact top-10 (matmul + `tf.math.top_k`), batch of 32 queries, 128-d float32, on this machine:",
            "",
            "| index size | ms per batch |",
            "|---|---|",
            *[f"| {int(size):,} | {ms:.1f} |" for size, ms in timing.items()],
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
