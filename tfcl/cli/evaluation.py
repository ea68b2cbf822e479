"""The evaluation table a training command ends with: the figures the benchmarks report, against chance."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Row = tuple[str, float, float | None]  # (metric, model, reference or None)


def format_table(title: str, rows: Sequence[Row], reference: str = "chance") -> str:
    """``rows`` as a small aligned table under ``title``; the third column is ``reference`` (e.g. chance)."""
    width = max(len(name) for name, _, _ in rows)
    column = max(7, len(reference))
    lines = [title, f"  {'':<{width}}  {'model':>7}  {reference:>{column}}"]
    for name, value, other in rows:
        lines.append(f"  {name:<{width}}  {value:>7.3f}  {'' if other is None else f'{other:.3f}':>{column}}")
    return "\n".join(lines)


def history_rows(history: Mapping[str, Sequence[float]]) -> list[Row]:
    """The last epoch's kNN top-1 (image methods' monitor; chance: one class of ten) and training diagnostics."""
    rows: list[Row] = []
    if "knn_top1" in history:
        rows.append(("kNN top-1 (test split)", history["knn_top1"][-1], 0.1))
    for name in ("loss", "val_loss", "alignment", "uniformity", "effective_rank"):
        if name in history:
            rows.append((f"{name} (last epoch)", history[name][-1], None))
    return rows


def topic_rows(model: Any, posts: Sequence[Any], topics: Sequence[str], seed: int = 0) -> list[Row]:
    """CD-TOM's topic prediction on held-out ``posts`` (those with a vocabulary topic): hit@1, hit@5 and MRR of
    ranking every vocabulary topic by cosine similarity; chance: the same metrics of a random ranking."""
    from tfcl.eval.batches import predict_in_batches
    from tfcl.eval.retrieval import multi_hot, topic_prediction_metrics

    known = set(topics)
    queries = [post for post in posts if post.document and known.intersection(post.topics)]
    if not queries:
        return []
    documents = predict_in_batches(model.embed_documents, [post.document for post in queries], 256)
    topic_embeddings = predict_in_batches(model.embed_topics, list(topics), 256)
    gold = multi_hot([post.topics for post in queries], topics)
    metrics = topic_prediction_metrics(np.asarray(documents) @ np.asarray(topic_embeddings).T, gold)
    chance = topic_prediction_metrics(np.random.default_rng(seed).random(gold.shape), gold)
    return [(f"{name} ({len(queries)} eval posts)", metrics[name], chance[name]) for name in ("hit@1", "hit@5", "mrr")]


def retrieval_rows(metrics_file: str | Path) -> list[Row]:
    """Recall@1/5 both ways from an image–text run's ``metrics.json``, with chance where it holds it."""
    path = Path(metrics_file)
    if not path.exists():
        return []
    metrics = json.loads(path.read_text())
    names = [f"{direction}_recall@{k}" for direction in ("t2i", "i2t") for k in (1, 5)]
    return [(name, metrics[name], metrics.get(f"chance_{name}")) for name in names if name in metrics]
