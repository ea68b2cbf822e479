"""Image–text benchmark: CLIP vs WenLan at an equal time budget, a small and a larger batch, vs random towers.

Pairs: the emoji (Chinese label + tags) and Tux Paint stamps (Chinese caption) of
:func:`tfcl.data.images.picture_text_pairs`, every tenth picture held out (stable CRC-32 split). Both methods use
the same towers (tfcl/recipes/image_text.py: ``resnet_cpu`` picture tower, random-init BERT over the BERT-Chinese
vocabulary, linear projections), AdamW at a constant learning rate, and stop at the end of the first epoch that ends
after ``--budget`` seconds of training (tracing included) on ``--clock``: ``cpu`` (default) counts this process's
CPU time divided by the number of cores (:class:`tfcl.callbacks.TimeBudget`), so rows stay comparable on a machine
shared with other jobs; ``wall`` counts wall time. WenLan keeps ``--queue-size`` keys per modality. The
random row is the same model untrained.

Metrics on the held-out pairs: image→text and text→image recall@1/5/10 and median rank (pairs with the same text
count as right answers; ties count against), and zero-shot accuracy over the Chinese category names of each source
(9 emoji categories, 16 Tux Paint categories; class embedding = mean over the prompt templates of
:data:`tfcl.eval.image_text.PROMPT_TEMPLATES_ZH`).

Writes results/image_text.{md,json}.  python benchmarks/image_text.py --budget 240 --batch-sizes 32 256
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
COLUMNS = (
    "i2t_recall@1",
    "i2t_recall@5",
    "i2t_recall@10",
    "i2t_median_rank",
    "t2i_recall@1",
    "t2i_recall@5",
    "t2i_recall@10",
    "t2i_median_rank",
    "zero_shot_emoji",
    "zero_shot_tuxpaint",
)


def model_options(args):
    return dict(
        image_size=args.image_size,
        text_length=args.text_length,
        num_layers=args.num_layers,
        hidden_dim=args.hidden_dim,
        intermediate_dim=4 * args.hidden_dim,
        projection_dim=args.projection_dim,
        queue_size=args.queue_size,
    )


def run(args, write):
    from tfcl.data.images import picture_text_pairs
    from tfcl.data.text import bert_chinese_vocab_path
    from tfcl.eval.image_text import evaluate_image_text
    from tfcl.recipes.image_text import train_image_text
    from tfcl.registry import get_recipe

    pairs = picture_text_pairs(args.image_size)
    held_out = int(pairs["held_out"].sum())
    data = {
        "pairs": len(pairs["text"]),
        "held_out": held_out,
        "train": len(pairs["text"]) - held_out,
        "emoji": int((pairs["source"] == "emoji").sum()),
        "tuxpaint": int((pairs["source"] == "tuxpaint").sum()),
    }
    vocabulary = bert_chinese_vocab_path()
    rows = [
        {
            "method": "random towers",
            "batch_size": None,
            "steps": 0,
            "train_seconds": 0.0,
            **evaluate_image_text(get_recipe("clip").build_model(vocabulary, **model_options(args)), pairs),
        }
    ]
    for batch_size in args.batch_sizes:
        for method in args.methods:
            with tempfile.TemporaryDirectory() as out_dir:
                start = time.perf_counter()
                model, history = train_image_text(
                    get_recipe(method),
                    pairs,
                    vocabulary,
                    out_dir,
                    epochs=100_000,
                    batch_size=batch_size,
                    steps_per_epoch=args.steps_per_epoch,
                    learning_rate=args.learning_rate,
                    time_budget=args.budget,
                    budget_clock=args.clock,
                    verbose=0,
                    **model_options(args),
                )
                seconds = time.perf_counter() - start
                metrics = json.loads((Path(out_dir) / "metrics.json").read_text())
            rows.append(
                {
                    "method": method,
                    "batch_size": batch_size,
                    "steps": int(model.optimizer.iterations),
                    "train_seconds": history.history["train_seconds"][-1],
                    "train_cpu_seconds": history.history["train_cpu_seconds"][-1],
                    "run_seconds": seconds,
                    "final_loss": history.history["loss"][-1],
                    **metrics,
                }
            )
            write(rows, data)
    return rows, data


def markdown(results):
    setup, data = results["setup"], results["data"]

    def cell(row, key):
        value = row.get(key)
        return "–" if value is None else f"{value:.0f}" if "median" in key else f"{value:.3f}"

    lines = [
        "| method | batch | steps | train s (CPU/cores) | train s (wall) | " + " | ".join(COLUMNS) + " |",
        "|---" * (5 + len(COLUMNS)) + "|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['method']} | {row['batch_size'] or '–'} | {row['steps']} "
            f"| {row.get('train_cpu_seconds', 0):.0f} | {row['train_seconds']:.0f} | "
            + " | ".join(cell(row, key) for key in COLUMNS)
            + " |"
        )
    return "\n".join(
        [
            "# Image–text benchmark (`benchmarks/image_text.py`)",
            "",
            f"Each trained row: {setup['budget']} s training budget on the {setup['clock']} clock (stops at the end "
            f"of the first {setup['steps_per_epoch']}-step epoch past it, tracing included), AdamW lr "
            f"{setup['learning_rate']}, pictures {setup['image_size']} px, {setup['num_layers']}-layer "
            f"{setup['hidden_dim']}-wide BERT (BERT-Chinese vocabulary, {setup['text_length']} tokens), projection "
            f"{setup['projection_dim']}, CLIP logit scale from 1/0.07, WenLan τ 0.07, momentum 0.99, queue "
            f"{setup['queue_size']} per modality. On {setup['machine']}, niced, with other jobs running; run "
            f"{setup['total_seconds']:.0f} s wall time so far ({len(results['rows']) - 1} trained rows).",
            "",
            f"Pairs: {data['pairs']} ({data['emoji']} emoji, {data['tuxpaint']} Tux Paint stamps with a Chinese "
            f"caption); {data['train']} train, {data['held_out']} held out. Recall/median rank over the "
            f"{data['held_out']} held-out pairs; zero-shot over the held-out pictures with a Chinese category name.",
            "",
            *lines,
            "",
        ]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=240, help="training seconds per trained row")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument(
        "--methods", nargs="+", default=["clip", "wenlan"], help="image-text entries of tfcl.registry to train"
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="budget clock: process CPU time / cores (robust to other jobs), or wall clock",
    )
    parser.add_argument("--steps-per-epoch", type=int, default=10, help="how often the budget is checked")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--text-length", type=int, default=32)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--projection-dim", type=int, default=64)
    parser.add_argument("--queue-size", type=int, default=1024)
    parser.add_argument("--out", default=str(RESULTS), help="folder for image_text.{md,json}")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def write(rows, data):  # after every row, so that an interrupted run keeps what it measured
        results = {
            "rows": rows,
            "data": data,
            "setup": {
                **vars(args),
                "total_seconds": time.perf_counter() - start,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            },
        }
        (out / "image_text.json").write_text(json.dumps(results, indent=1))
        (out / "image_text.md").write_text(markdown(results))
        print(markdown(results), flush=True)

    write(*run(args, write))


if __name__ == "__main__":
    main()
