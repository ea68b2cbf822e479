"""Training step time of the n-gram text tower: AdamW against LazyAdamW (tfcl.optimizers), side by side in one run.

The model is supervised SimCSE as the recipe ``simcse-sup-paraphrase`` builds it (tfcl/recipes/simcse.py: n-gram
tower, identity projector, batches of 128 (anchor, positive, hard negative) triplets of its real training data,
tokenised in advance). For each width in ``--dims`` and each optimiser, ``--steps`` steps of ``model.fit`` after
``--warmup`` steps that trace and warm the function; seconds per step is the wall time of the timed steps over their
number. The two optimisers run one after the other at each width, on the same batches; the ratio AdamW / LazyAdamW
is the speedup of updating only the table rows a batch touches.

    nice python benchmarks/ngram_step.py --dims 512 1024 --steps 30
Writes results/ngram_step.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"
OPTIMIZERS = ("AdamW", "LazyAdamW")


def seconds_per_step(dim: int, lazy: bool, batches: list, warmup: int) -> float:
    import tensorflow as tf

    from tfcl.recipes.simcse import build_simcse_model
    from tfcl.registry import RECIPES

    args = {**RECIPES["simcse-sup-paraphrase"].options, "tower": "ngram", "ngram_dim": dim, "lazy_updates": lazy}
    model = build_simcse_model(None, args)
    spec = tf.nest.map_structure(tf.TensorSpec.from_tensor, batches[0])
    model.fit(tf.data.Dataset.from_generator(lambda: iter(batches[:warmup]), output_signature=spec), verbose=0)
    timed = batches[warmup:]
    start = time.perf_counter()
    model.fit(tf.data.Dataset.from_generator(lambda: iter(timed), output_signature=spec), verbose=0)
    return (time.perf_counter() - start) / len(timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per (width, optimiser)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    from tfcl.recipes.simcse import build_text_encoder, tokenized_batches, training_columns, with_defaults
    from tfcl.registry import RECIPES

    options = with_defaults({**RECIPES["simcse-sup-paraphrase"].options, "tower": "ngram"})
    columns = training_columns(options)
    encoder = build_text_encoder(None, options)  # tokenising depends on buckets, orders and length, not width
    batches = list(tokenized_batches(columns, encoder, options["batch_size"]).take(args.warmup + args.steps))
    rows = []
    for dim in args.dims:
        timing = {name: seconds_per_step(dim, name == "LazyAdamW", batches, args.warmup) for name in OPTIMIZERS}
        rows.append({"dim": dim, **{f"{name}_s_per_step": value for name, value in timing.items()}})
        rows[-1]["speedup"] = timing["AdamW"] / timing["LazyAdamW"]
        print(rows[-1], flush=True)
    results = {
        "rows": rows,
        "setup": {
            **vars(args),
            "batch_size": options["batch_size"],
            "ngram_buckets": options["ngram_buckets"],
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "date": datetime.now(timezone.utc).date().isoformat(),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ngram_step.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [
        "# n-gram tower: seconds per training step, AdamW vs LazyAdamW",
        "",
        f"simcse-sup-paraphrase triplets, batch {options['batch_size']}, {options['ngram_buckets']:,} buckets; "
        f"{args.steps} timed steps each, same batches; {results['setup']['machine']}, shared and noisy.",
        "",
        "| width | AdamW s/step | LazyAdamW s/step | speedup |",
        "|---|---|---|---|",
        *(
            f"| {r['dim']} | {r['AdamW_s_per_step']:.3f} | {r['LazyAdamW_s_per_step']:.3f} | {r['speedup']:.1f}× |"
            for r in rows
        ),
    ]
    (RESULTS / "ngram_step.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
