"""Image self-supervised benchmark on Fashion-MNIST: every method, same encoder, same training-time budget.

Each method trains in its own process (so peak memory is its own), then its frozen encoder is evaluated with
weighted cosine kNN (k=20, T=0.1; 60,000 train → 10,000 test) and a linear probe, next to raw pixels and a
random-init encoder under the same protocols. Writes results/image_ssl.{md,json,png}.

The budget is counted on ``--clock``: ``cpu`` (default) is the training process's CPU time divided by the number
of cores, so a run on a machine shared with other jobs gets the same amount of work as on an idle one; both that
and the wall-clock training time are in the table.

    python benchmarks/image_ssl.py --budget-minutes 20 --methods simclr

Each method trains at its recipe's batch size unless ``--batch-size`` is given. ``--combine`` writes one table and
plot from the method rows of earlier runs with the same budget, clock and encoder (for runs made one at a time).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def peak_memory_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_step_seconds(method, images, batch_size, encoder, clock, steps=30, warmup=5):
    """Seconds per training step on ``clock``, measured on a throwaway model over ``steps`` steps of one ``fit``
    after ``warmup`` steps (tracing and the shuffle buffer's first fill are not counted)."""
    import keras

    from tfcl.augment import view_dataset
    from tfcl.callbacks import cpu_seconds
    from tfcl.registry import get_recipe

    now = time.perf_counter if clock == "wall" else cpu_seconds
    readings = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: readings.append(now()) if batch == warmup else None,
        on_train_end=lambda logs: readings.append(now()),
    )
    recipe = get_recipe(method)
    model = recipe.build_model(images.shape[-1], encoder)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4))
    dataset = view_dataset(images, recipe.views(images.shape[1], images.shape[-1]), batch_size, repeat=True)
    model.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[timer])
    return (readings[1] - readings[0]) / steps


def evaluate(encoder_or_features, train, test):
    from tfcl.eval import extract_features, knn, linear_probe

    if callable(getattr(encoder_or_features, "predict", None)):
        train_features = extract_features(encoder_or_features, train[0])
        test_features = extract_features(encoder_or_features, test[0])
    else:
        train_features, test_features = encoder_or_features
    return {
        "knn": knn(train_features, train[1], test_features, test[1]),
        "linear": linear_probe(train_features, train[1], test_features, test[1]),
    }


def run_method(method, args):
    """Train one method for the budget and evaluate it; returns a result row."""
    from tfcl.data.images import fashion_mnist_arrays
    from tfcl.recipes.image import train_image_method
    from tfcl.registry import get_recipe

    train, test = fashion_mnist_arrays("train"), fashion_mnist_arrays("test")
    recipe = get_recipe(method)
    batch_size = args.batch_size or recipe.batch_size
    step_seconds = measure_step_seconds(method, train[0], batch_size, args.encoder, args.clock)
    steps_per_epoch = len(train[0]) // batch_size
    epochs = max(1, round(args.budget_minutes * 60 / (step_seconds * steps_per_epoch)))
    monitor = (monitor_bank(train), test)
    model, history = train_image_method(
        recipe,
        train,
        out_dir=RESULTS / "runs" / args.name / method,
        epochs=epochs,
        batch_size=batch_size,
        encoder=args.encoder,
        eval_data=monitor,
        eval_every=args.eval_every,
        time_budget=args.budget_minutes * 60,
        budget_clock=args.clock,
        verbose=2,
    )
    logs = history.history
    scores = evaluate(model.encoder, train, test)
    train_seconds = logs["train_seconds"][-1]
    clock_seconds = logs["train_seconds" if args.clock == "wall" else "train_cpu_seconds"]
    epochs_done = len(logs["loss"])
    evaluated_epochs = [e for e in range(1, epochs_done + 1) if e % args.eval_every == 0]  # knn_top1 is logged there
    return {
        "method": method,
        "batch_size": batch_size,
        "knn_top1": scores["knn"].top1,
        "linear_top1": scores["linear"].top1,
        "images_per_second": epochs_done * steps_per_epoch * batch_size / clock_seconds[-1],
        "peak_memory_mb": peak_memory_mb(),
        "embedding_std": logs["embedding_std"][-1],
        "effective_rank": logs["effective_rank"][-1],
        "epochs": epochs_done,
        "train_seconds": train_seconds,
        "train_cpu_seconds": logs["train_cpu_seconds"][-1],
        "curve": list(zip([clock_seconds[e - 1] for e in evaluated_epochs], logs.get("knn_top1", []))),
        "protocols": {k: v.protocol for k, v in scores.items()},
    }


def monitor_bank(train):
    """The 10,000 training images (every sixth) the kNN curve's monitor uses as its bank."""
    return train[0][::6], train[1][::6]


def run_baselines(args):
    from tfcl.data.images import fashion_mnist_arrays
    from tfcl.encoders import image_encoder
    from tfcl.eval import extract_features, knn

    train, test = fashion_mnist_arrays("train"), fashion_mnist_arrays("test")
    bank = monitor_bank(train)
    rows = []
    for name, encoder in (("raw pixels", None), ("random-init encoder", image_encoder(args.encoder, channels=1))):

        def features(images, encoder=encoder):
            return images.reshape(len(images), -1) / 255.0 if encoder is None else extract_features(encoder, images)

        scores = evaluate((features(train[0]), features(test[0])), train, test)
        rows.append(
            {
                "method": name,
                "knn_top1": scores["knn"].top1,
                "linear_top1": scores["linear"].top1,
                "knn_top1_monitor": knn(features(bank[0]), bank[1], features(test[0]), test[1]).top1,
            }
        )
    return rows


def write_outputs(rows, args):
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / args.name
    sources = {"combined_from": args.combine} if args.combine else {}
    stem.with_suffix(".json").write_text(json.dumps({**settings(args), **sources, "rows": rows}, indent=1))
    header = (
        "| method | batch | kNN top-1 | linear top-1 | images/s | peak memory (MB) | embedding std | epochs |"
        " train CPU time / cores (s) | train wall time (s) |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for row in rows:
        cells = [
            row["method"],
            str(row.get("batch_size", "–")),
            f"{100 * row['knn_top1']:.2f}",
            f"{100 * row['linear_top1']:.2f}",
        ]
        cells += [f"{row[key]:.0f}" if key in row else "–" for key in ("images_per_second", "peak_memory_mb")]
        cells += [f"{row['embedding_std']:.4f}" if "embedding_std" in row else "–"]
        cells += [str(row.get("epochs", "–"))]
        cells += [f"{row[key]:.0f}" if key in row else "–" for key in ("train_cpu_seconds", "train_seconds")]
        lines.append("| " + " | ".join(cells) + " |")
    protocols = next((row["protocols"] for row in rows if "protocols" in row), {})
    clock = "wall-clock time" if args.clock == "wall" else "process CPU time / cores"
    table = (
        f"Fashion-MNIST, encoder `{args.encoder}`, training budget "
        f"{args.budget_minutes} min of {clock} per method on this machine ({os.cpu_count()} cores).\n"
        f"Protocols: {protocols.get('knn', 'kNN')}, 60,000 → 10,000; "
        f"{protocols.get('linear', 'linear probe')}.\n"
        + (f"Rows from the runs {', '.join(args.combine)} (baselines from the first).\n" if args.combine else "")
        + "\n"
        + header
        + "\n".join(lines)
        + "\n"
    )
    stem.with_suffix(".md").write_text(table)
    print(table)
    curves = [row for row in rows if row.get("curve")]
    if curves:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(7, 4.5))
        for row in curves:
            seconds, accuracy = zip(*row["curve"])
            axis.plot([s / 60 for s in seconds], [100 * a for a in accuracy], marker="o", label=row["method"])
        for row in rows:
            if "knn_top1_monitor" in row:  # the baselines, on the curve's 10k bank
                axis.axhline(100 * row["knn_top1_monitor"], linestyle="--", linewidth=1, color="grey")
                axis.annotate(row["method"], (0, 100 * row["knn_top1_monitor"]), fontsize=8)
        axis.set_xlim(left=0)
        axis.set_xlabel("training time (min, " + ("wall clock" if args.clock == "wall" else "CPU time / cores") + ")")
        axis.set_ylabel("kNN top-1 (%), 10k bank")
        axis.set_title("Fashion-MNIST: kNN accuracy against training time")
        axis.legend()
        figure.tight_layout()
        figure.savefig(stem.with_suffix(".png"), dpi=120)


def settings(args):
    """What makes runs comparable: the budget, its clock and the encoder."""
    return {"budget_minutes": args.budget_minutes, "clock": args.clock, "encoder": args.encoder}


def combine_runs(runs, args):
    """The baselines of the first run and the method rows of all, from results/NAME.json of earlier runs; a run
    given as ``NAME:METHOD,METHOD`` contributes only those methods."""
    rows, methods = [], set()
    for index, spec in enumerate(runs):
        name, _, chosen = spec.partition(":")
        run = json.loads((RESULTS / name).with_suffix(".json").read_text())
        if {key: run.get(key) for key in settings(args)} != settings(args):
            raise SystemExit(f"{name}: { ({key: run.get(key) for key in settings(args)}) }, not {settings(args)}")
        for row in run["rows"]:
            if "curve" not in row:  # a baseline
                rows.extend([row] if index == 0 else [])
            elif chosen and row["method"] not in chosen.split(","):
                continue
            elif row["method"] in methods:
                raise SystemExit(f"{row['method']} is in more than one of {runs}")
            else:
                methods.add(row["method"])
                rows.append({"batch_size": run.get("batch_size"), **row})  # runs before per-method batches
    from tfcl.registry import method_names

    order = method_names("images")
    return sorted(rows, key=lambda row: order.index(row["method"]) if "curve" in row else -1)


def main():
    from tfcl.registry import method_names

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(method_names("images")), help="comma-separated; default: all")
    parser.add_argument(
        "--budget-minutes", type=float, default=16.0, help="training time per method (16: the README table)"
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="budget clock: process CPU time / cores (robust to other jobs), or wall clock",
    )
    parser.add_argument("--batch-size", type=int, help="global batch size of every method (default: each recipe's)")
    parser.add_argument("--encoder", default="resnet_cpu")
    parser.add_argument("--eval-every", type=int, default=1, help="epochs between kNN curve points")
    parser.add_argument("--name", default="image_ssl", help="output file stem under benchmarks/results/")
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="NAME[:METHODS]",
        help="instead of training, combine the runs results/NAME.json (same budget, clock, encoder)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.combine:
        write_outputs(combine_runs(args.combine, args), args)
        return
    if args.worker:  # child process: one method (or the baselines), result as JSON on the last stdout line
        row = run_baselines(args) if args.worker == "baselines" else run_method(args.worker, args)
        print("RESULT " + json.dumps(row))
        return
    rows = []
    for worker in ["baselines", *args.methods.split(",")]:
        command = [sys.executable, __file__, "--worker", worker, *sys.argv[1:]]
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        print(output[-3000:])
        result = json.loads(output.rsplit("RESULT ", 1)[1])
        rows.extend(result if isinstance(result, list) else [result])
    write_outputs(rows, args)


if __name__ == "__main__":
    main()
