"""How wide must a frozen dense feature be for a linear probe to match TF-IDF on SMP2020-EWECT?

The SMP2020 probe of `benchmarks/text_zh.py` (logistic regression, C chosen on 20% of the training split,
tfcl.eval.text_similarity.probe_classifier; the texts the suite skips are skipped), with C from a wider grid
(``--probe-cs``; the suite's PROBE_CS stops at 0.1, where wide dense features chose it), on TF-IDF character
1–2-gram rows (sublinear tf, fitted on the training texts, as the suite's ``tfidf`` row) and on sparse random
projections (Achlioptas/Li, density 1/√features) of those same rows to each width. A random projection keeps inner
products in expectation: its accuracy is what width alone gives a dense feature that holds the TF-IDF row, as an
untrained bag-of-n-grams tower of that width does.

``--ceiling-widths``: the n-gram tower (tfcl.text.NgramEncoder as `simcse-sup-paraphrase` builds it: character
1–2-grams, 2^17 buckets, IDF-initialised) of each width trained with a softmax head on the probe's own training
labels (LazyAdamW 1e-3, batch 128, ``--ceiling-epochs``), then frozen and probed like any tower: not a candidate
(it has seen the labels), a ceiling on what an objective without them can give that tower. ``--ceiling-hidden``
adds rows whose tower has a ReLU layer of that width over the n-gram mean (the frozen feature is that layer's
output): a non-linear tower's ceiling.

Writes results/<--name>.{md,json} (default probe_width).  nice python benchmarks/probe_width.py
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def label_trained_tower(width, texts, labels, epochs, seed, hidden=0):
    """The frozen features of the n-gram tower of ``width`` (and a ReLU layer of ``hidden`` units, if any) trained
    with a softmax head on ``labels`` (see the module docstring): a ``features(texts, training)`` callable."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tfcl.optimizers import LazyAdamW
    from tfcl.text import NgramEncoder

    keras.utils.set_random_seed(seed)
    classes, label_ids = np.unique(labels, return_inverse=True)
    encoder = NgramEncoder(num_buckets=2**17, orders=(1, 2), embedding_dim=width)
    encoder.adapt(texts)
    layers = [keras.layers.Dense(hidden, activation="relu")] if hidden else []
    head = keras.layers.Dense(len(classes))
    model = keras.Sequential([*layers, head])
    model.build((None, width))
    variables = encoder.trainable_variables + model.trainable_variables
    optimizer = LazyAdamW(1e-3, weight_decay=0.0)
    batches = (
        tf.data.Dataset.from_tensor_slices((list(texts), label_ids))
        .shuffle(len(texts), seed=seed)
        .batch(128)
        .map(lambda batch, ids: (encoder.tokenize(batch), ids))
    )

    @tf.function
    def step(tokens, ids):
        with tf.GradientTape() as tape:
            logits = model(encoder(tokens, training=True), training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(ids, logits, from_logits=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(epochs):
        for tokens, ids in batches:
            step(tokens, ids)

    def features(batch, training=False):
        representation = encoder(batch, training=training)
        return layers[0](representation) if layers else representation

    return features


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", type=int, nargs="*", default=[256, 1024, 2048])
    parser.add_argument("--ceiling-widths", type=int, nargs="*", default=[256, 2048])
    parser.add_argument("--ceiling-epochs", type=int, default=3)
    parser.add_argument("--ceiling-hidden", type=int, nargs="*", default=[], help="widths of non-linear ceilings")
    parser.add_argument("--name", default="probe_width", help="results/<name>.{md,json}")
    parser.add_argument("--probe-cs", type=float, nargs="+", default=[0.001, 0.01, 0.1, 1.0, 10.0, 100.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np
    from sklearn.random_projection import SparseRandomProjection

    from tfcl.data import zh_text
    from tfcl.eval.text_similarity import encoder_embed, probe_classifier
    from tfcl.eval.text_zh import CharTfidf, screen

    (train_texts, train_labels), (test_texts, test_labels) = (
        zip(*screen(list(zip(*zh_text.smp2020_emotion(split))), lambda row: row[:1])[0]) for split in ("train", "eval")
    )
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    embed = CharTfidf().fit(train_texts)
    train_rows, test_rows = embed(train_texts), embed(test_texts)

    def probe(train_features, test_features):
        start = time.perf_counter()
        classifier = probe_classifier(train_features, train_labels, C=None, choices=args.probe_cs)
        return {
            "acc": float(np.mean(classifier.predict(test_features) == test_labels)),
            "C": float(classifier.named_steps["classify"].C),
            "seconds": round(time.perf_counter() - start, 1),
        }

    rows = [{"features": "tfidf", "width": int(train_rows.shape[1]), **probe(train_rows, test_rows)}]
    print(rows[-1], flush=True)
    for width in args.widths:
        projection = SparseRandomProjection(width, dense_output=True, random_state=args.seed).fit(train_rows)
        projected = [projection.transform(rows_).astype(np.float32) for rows_ in (train_rows, test_rows)]
        rows.append({"features": "random projection of tfidf", "width": width, **probe(*projected)})
        print(rows[-1], flush=True)
    for width, hidden in [(width, 0) for width in args.ceiling_widths] + [
        (width, hidden) for width in args.ceiling_widths for hidden in args.ceiling_hidden
    ]:
        start = time.perf_counter()
        tower = label_trained_tower(width, train_texts, train_labels, args.ceiling_epochs, args.seed, hidden)
        train_seconds = round(time.perf_counter() - start, 1)
        frozen = encoder_embed(tower)
        row = probe(frozen(list(train_texts)), frozen(list(test_texts)))
        features = "n-gram tower trained on the probe's labels"
        if hidden:
            features = f"{features}, ReLU layer of {hidden} over its {width}-wide mean"
        rows.append({"features": features, "width": hidden or width, **row, "train_seconds": train_seconds})
        print(rows[-1], flush=True)
    results = {
        "rows": rows,
        "setup": {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "train": len(train_texts),
            "test": len(test_texts),
            "seed": args.seed,
            "ceiling_epochs": args.ceiling_epochs,
            "probe_cs": args.probe_cs,
            "ceiling_hidden": args.ceiling_hidden,
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    lines = [
        "# SMP2020 probe accuracy against feature width (`benchmarks/probe_width.py`)",
        "",
        f"Logistic-regression probe (C from {args.probe_cs} chosen on 20% of the {len(train_texts):,} training "
        "texts), accuracy on the "
        f"{len(test_texts):,} eval texts; sparse random projections (density 1/√features, seed {args.seed}) of "
        "the TF-IDF rows; towers trained on the probe's labels: a ceiling, not a candidate "
        f"({args.ceiling_epochs} epochs; the module docstring).",
        "",
        "| features | width | SMP2020 acc | C |",
        "|---|---|---|---|",
        *(f"| {row['features']} | {row['width']:,} | {row['acc']:.4f} | {row['C']:g} |" for row in rows),
    ]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
