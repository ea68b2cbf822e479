"""Chinese text benchmark: text towers against TF-IDF on the suite of `tfcl eval text` (tfcl/eval/text_zh.py).

Metrics (one row per model): STS-B dev Spearman; LCQMC, BQ, PAWS-X, AFQMC dev ROC-AUC of cosine similarity;
SMP2020-EWECT probe accuracy and macro-F1 and weibo_senti probe accuracy (logistic regression on frozen
representations, C chosen on 20% of the training split); same-topic precision@10 on the real 2020-03-18 day.

Rows come from entries:
- ``tfidf``: character 1–2-gram TF-IDF (sublinear tf), fitted on each task's own texts.
- ``random-init BERT``: TextEncoder.from_vocabulary(bert-base-chinese vocabulary), 2 layers, 128 wide, mean
  pooling, sequence length 64, seed 0, untrained.
- ``--model NAME=PATH`` (repeatable): a trained tower as `tfcl eval text --model` loads it (a text method's
  model.keras, a SavedModel export, a keras-hub preset folder such as `tfcl pretrain` writes).
- ``--history NAME=JSON``: a JSON object merged into the row NAME: e.g. ``train_seconds``, ``tokens_per_s`` and
  ``curve``, a list of [training minutes, STS-B dev Spearman] checkpoints drawn in the plot.

Rows already in the results file are kept unless re-evaluated (same NAME) or --fresh is given, so trained towers
can be added one at a time. Writes results/<name>.{json,md,png}.
    python benchmarks/text_zh.py                                  # tfidf and random-init rows
    python benchmarks/text_zh.py --no-baselines --model mlm=runs/mlm/preset --history mlm=runs/mlm/history.json
"""

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"
RANDOM_INIT = {"num_layers": 2, "num_heads": 2, "hidden_dim": 128, "intermediate_dim": 512, "sequence_length": 64}
COLUMNS = (  # (row key, table header)
    ("stsb_dev_spearman", "STS-B ρ"),
    ("lcqmc_dev_auc", "LCQMC AUC"),
    ("bq_dev_auc", "BQ AUC"),
    ("pawsx_dev_auc", "PAWS-X AUC"),
    ("afqmc_dev_auc", "AFQMC AUC"),
    ("smp2020_probe_acc", "SMP2020 acc"),
    ("smp2020_probe_macro_f1", "SMP2020 F1"),
    ("senti_probe_acc", "senti acc"),
    ("weibo_topic_p10", "topic P@10"),
)


def named(values, flag):
    """``{NAME: VALUE}`` of repeated ``NAME=VALUE`` arguments."""
    pairs = dict(value.split("=", 1) for value in values or ())
    if any(not name or not value for name, value in pairs.items()):
        raise SystemExit(f"{flag} takes NAME=VALUE")
    return pairs


def random_init_embed():
    import keras

    from tfcl.data.text import bert_chinese_vocab_path
    from tfcl.eval.text_similarity import encoder_embed
    from tfcl.text import TextEncoder

    keras.utils.set_random_seed(0)
    return encoder_embed(TextEncoder.from_vocabulary(bert_chinese_vocab_path(), **RANDOM_INIT))


def entries(args):
    """``{row name: representation factory}`` in table order."""
    from tfcl.cli.eval import load_text_embed
    from tfcl.eval.text_zh import CharTfidf

    found = {} if args.no_baselines else {"tfidf": CharTfidf, "random-init BERT": random_init_embed}
    for name, path in named(args.model, "--model").items():
        found[name] = lambda path=path: load_text_embed(path)
    return found


def markdown(results):
    rows, setup = results["rows"], results["setup"]
    header = "| model | " + " | ".join(title for _, title in COLUMNS) + " | training (min) | tokens/s |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    scored = [row for row in rows if "examples" in row]
    reference = scored[0] if scored else {}
    for row in rows:
        mark = " †" if row.get("examples", reference.get("examples")) != reference.get("examples") else ""
        cells = [f"{row[key]:.4f}" if key in row else "–" for key, _ in COLUMNS]
        minutes = f"{row['train_seconds'] / 60:.1f}" if "train_seconds" in row else "–"
        tokens = f"{row['tokens_per_s']:,.0f}" if "tokens_per_s" in row else "–"
        lines.append(f"| {row['model']}{mark} | " + " | ".join(cells) + f" | {minutes} | {tokens} |")
    examples = ", ".join(f"{task} {n:,}" for task, n in reference.get("examples", {}).items())
    skipped = "; ".join(
        f"{task}: " + ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        for task, reasons in reference.get("skipped", {}).items()
    )
    size = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in setup["random_init"].items())
    return "\n".join(
        [
            "# Chinese text benchmark (`benchmarks/text_zh.py`)",
            "",
            f"On {setup['machine']}; suite of `tfcl eval text` (tfcl/eval/text_zh.py; see the script's docstring).",
            "",
            *lines,
            "",
            f"Examples scored ({reference.get('model', '–')}): {examples}. Skipped as bad input: {skipped or 'none'}. "
            "† scored on other examples (--limit or --tasks; see the JSON).",
            f"Random-init BERT: bert-base-chinese vocabulary, {size}, mean pooling, untrained (seed 0). "
            f"Probes: {setup['probe']}. Training time and tokens/s: as the trained row's --history JSON gives them.",
            "",
        ]
    )


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for row in results["rows"]:
        if row.get("curve"):
            minutes, spearman = zip(*row["curve"])
            axis.plot(minutes, spearman, marker="o", label=row["model"])
        elif "stsb_dev_spearman" in row:
            axis.axhline(row["stsb_dev_spearman"], linestyle="--", linewidth=1, color="grey")
            axis.annotate(row["model"], (0, row["stsb_dev_spearman"]), fontsize=8, va="bottom")
    axis.set_xlim(left=0)
    axis.set_xlabel("training time (min)")
    axis.set_ylabel("STS-B dev Spearman")
    axis.set_title("Chinese STS-B dev against training time (dashed: untrained rows)")
    if any(row.get("curve") for row in results["rows"]):
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="NAME=PATH of a trained text tower (repeatable)")
    parser.add_argument("--history", action="append", help="NAME=JSON merged into row NAME (repeatable)")
    parser.add_argument("--no-baselines", action="store_true", help="do not (re-)evaluate tfidf and random-init")
    parser.add_argument("--fresh", action="store_true", help="drop the rows already in the results file")
    parser.add_argument("--tasks", help="comma-separated subset of the suite (default: all)")
    parser.add_argument("--limit", type=int, help="at most this many examples per task (a quick check)")
    parser.add_argument("--name", default="text_zh", help="results file stem")
    args = parser.parse_args()

    from tfcl.eval.text_similarity import PROBE_CS
    from tfcl.eval.text_zh import TASKS, evaluate_text

    tasks = TASKS if args.tasks is None else tuple(args.tasks.split(","))
    stem = RESULTS / args.name
    previous = (
        {}
        if args.fresh or not stem.with_suffix(".json").exists()
        else json.loads(stem.with_suffix(".json").read_text())
    )
    rows = {row["model"]: row for row in previous.get("rows", [])}
    setup = previous.get("setup", {})
    for name, make in entries(args).items():
        start = time.perf_counter()
        result = evaluate_text(make(), tasks, limit=args.limit)
        seconds = round(time.perf_counter() - start, 1)
        rows[name] = {
            "model": name,
            **result,
            "eval_seconds": seconds,
            "date": f"{datetime.now(timezone.utc):%Y-%m-%d}",
        }
        print(name, json.dumps(rows[name]), flush=True)
    for name, path in named(args.history, "--history").items():
        rows.setdefault(name, {"model": name}).update(json.loads(Path(path).read_text()))
    setup.update(
        machine=f"{platform.machine()}, {os.cpu_count()} CPU cores",
        random_init=RANDOM_INIT,
        probe=f"logistic regression (L-BFGS), dense features standardised, C from {list(PROBE_CS)} by accuracy on "
        "a seeded stratified 20% of the training split, refitted on all of it; weibo_senti split 80/20 (seed 0)",
    )
    results = {"rows": list(rows.values()), "setup": setup}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    stem.with_suffix(".md").write_text(markdown(results))
    plot(results, stem.with_suffix(".png"))
    print(markdown(results))


if __name__ == "__main__":
    main()
