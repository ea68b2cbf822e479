"""SimCSE objectives on real Chinese data, the same random-init tower and the same number of steps: STS-B dev Spearman.

Each row trains the recipe's tower (tfcl/recipes/simcse.py defaults: 2-layer, 128-wide BERT over the BERT-Chinese
vocabulary, mean pooling, sequence length 32, AdamW 3e-4, batch 64) from the same initial weights for ``--steps``:

- ``unsup-weibo``: unsupervised SimCSE (dropout views) on distinct Weibo post documents (hashtags removed), one
  pass over steps × batch posts drawn evenly from the 48 day files;
- ``nli``: supervised SimCSE on the NLI triplets (OCNLI train + CMNLI/CSNLI dev), contradiction as hard negative;
- ``cosent``: CoSENT on STS-B train (in-domain for STS-B dev; a reference, not a self-supervised row).

Score: Spearman correlation of the cosine of the two sentences' mean-pooled embeddings (``training=False``) with
the human score, over the pairs of Chinese STS-B dev. Rows also for the untrained tower (each row's own score
before training; they start from the same weights) and TF-IDF (character 1–2-grams, sublinear tf, fitted on the
dev sentences).

Writes results/simcse_zh.{md,json}.  nice python benchmarks/simcse_zh.py --steps 200
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
OBJECTIVES = {  # row → recipe arguments
    "unsup-weibo": {"objective": "unsup", "corpus": "weibo"},
    "nli": {"objective": "nli"},
    "cosent": {"objective": "cosent"},
}


def stsb_spearman(embed, pairs):
    """Spearman of cosine(first, second) with the score over ``pairs`` (ScoredPair)."""
    import numpy as np
    from scipy.stats import spearmanr

    from tfcl.eval.text_similarity import normalise_rows

    firsts, seconds = (normalise_rows(np.asarray(embed([pair[k] for pair in pairs]))) for k in (0, 1))
    return float(spearmanr(np.sum(firsts * seconds, axis=1), [pair.label for pair in pairs]).statistic)


def tfidf_spearman(pairs):
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [pair.first for pair in pairs] + [pair.second for pair in pairs]
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True).fit(texts)
    return stsb_spearman(lambda batch: vectorizer.transform(batch).toarray(), pairs)


def run_row(name, args, dev):
    from tfcl.eval.text_similarity import encoder_embed
    from tfcl.recipes.simcse import build_simcse

    options = {**OBJECTIVES[name], "batch_size": args.batch_size, "seed": args.seed}
    if name == "unsup-weibo":
        options["max_texts"] = args.steps * args.batch_size
    start = time.perf_counter()
    model, dataset = build_simcse(options)
    data_seconds = time.perf_counter() - start
    untrained = stsb_spearman(encoder_embed(model.encoder), dev)
    start, cpu = time.perf_counter(), time.process_time()
    history = model.fit(dataset.repeat(), steps_per_epoch=args.steps, epochs=1, verbose=0).history
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return {
        "untrained_spearman": untrained,
        "stsb_dev_spearman": stsb_spearman(encoder_embed(model.encoder), dev),
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,
        "data_seconds": data_seconds,
        "final_loss": float(history["loss"][-1]),
    }


def markdown(results):
    setup, rows = results["setup"], results["rows"]
    lines = [
        "# SimCSE objectives on Chinese data (`benchmarks/simcse_zh.py`)",
        "",
        f"{setup['steps']} steps per row, batch {setup['batch_size']}, same random-init tower and initial weights "
        f"(2-layer, 128-wide BERT, BERT-Chinese vocabulary, sequence length 32, AdamW 3e-4), on {setup['machine']} "
        f"(shared with other jobs: times are indicative); whole run {setup['total_seconds']:.0f} s. "
        f"Score: STS-B dev Spearman (cosine of mean-pooled embeddings vs score, {setup['dev_pairs']} pairs).",
        "",
        "| model | trained on | STS-B dev Spearman | final loss | training wall (s) | training CPU (s) |",
        "|---|---|---|---|---|---|",
        f"| TF-IDF char 1–2-grams | dev sentences | {results['tfidf']:.3f} | – | – | – |",
        f"| untrained tower | – | {results['untrained']:.3f} | – | – | – |",
    ]
    trained_on = {
        "unsup-weibo": "SimCSE-unsup, Weibo posts",
        "nli": "SimCSE-sup, NLI triplets",
        "cosent": "CoSENT, STS-B train",
    }
    for name, row in rows.items():
        lines.append(
            f"| {name} | {trained_on[name]} | {row['stsb_dev_spearman']:.3f} | {row['final_loss']:.3f} "
            f"| {row['train_seconds']:.0f} | {row['train_cpu_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rows", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "simcse_zh"))
    args = parser.parse_args()

    from tfcl.data.zh_text import sts_b

    start = time.perf_counter()
    dev = sts_b("dev")
    rows = {name: run_row(name, args, dev) for name in args.rows}
    results = {
        "setup": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "dev_pairs": len(dev),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "total_seconds": time.perf_counter() - start,
        },
        "tfidf": tfidf_spearman(dev),
        "untrained": next(iter(rows.values()))["untrained_spearman"],
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(results, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
