"""Weibo topics benchmark: CD-TOM vs TF-IDF on 博文预测话题 (post → topic) and 找相似博文 (post → similar posts).

Pipeline: the corpus goes through the Beam ingestion job (tfcl/data/weibo_ingest.py: de-duplication by id, split
by id hash, 10% eval, topic vocabulary = topics of at least 5 training posts), CD-TOM trains on the train split
(tfcl/recipes/cdtom.py), and both are evaluated on the eval split with the post's hashtags hidden (the input is
the document: the text with its hashtags removed).

- Topic prediction: held-out posts with at least one vocabulary topic (and a non-empty document) rank every
  vocabulary topic; hit@1, hit@5, MRR (tfcl/eval/retrieval.py; ties count against the true topic).
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
"""

import argparse
import collections
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", help="Weibo JSON lines or CSV (default: a generated corpus)")
    parser.add_argument("--posts", type=int, default=4000, help="posts of the generated corpus")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.1])
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
    parser.add_argument("--name", default="weibo_topics", help="results/<name>.{md,json}")
    parser.add_argument("--note", help="a remark printed with the results (e.g. how loaded the machine was)")
    parser.add_argument("--work-dir", help="ingestion output and runs (default: a temporary folder)")
    args = parser.parse_args()

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
