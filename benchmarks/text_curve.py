"""A sentence recipe trained epoch by epoch, its text tower scored on STS-B dev (Spearman) and LCQMC dev (ROC-AUC)
before training and after every epoch: the learning curve behind a `benchmarks/text_zh.py` row.

The recipe's options (tfcl/registry.py) are overridden by ``--option KEY=VALUE`` (a Python literal, e.g.
``tower=ngram``: a sentence recipe's tower is BERT unless told). The number of epochs is fixed before the run; every
epoch is scored and the last one is the row (no epoch is picked on dev). After each epoch the tower is saved to
``OUT/encoder.keras`` and the curve to ``OUT/history.json``, which `text_zh.py` takes as
``--model NAME=OUT/encoder.keras --history NAME=OUT/history.json``.

    nice python benchmarks/text_curve.py --recipe simcse-sup-paraphrase --option tower=ngram --option ngram_dim=2048 \\
        --epochs 6 --out /tmp/ngram2048
"""

import argparse
import ast
import json
import sys
import time
from pathlib import Path

CURVE_TASKS = {"stsb_dev": "stsb_dev_spearman", "lcqmc_dev": "lcqmc_dev_auc"}


def parse_options(values):
    """``{KEY: literal}`` of repeated ``KEY=VALUE`` arguments."""
    options = {}
    for value in values or ():
        key, _, literal = value.partition("=")
        if not key or not literal:
            raise SystemExit("--option takes KEY=VALUE")
        try:
            options[key] = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            options[key] = literal
    return options


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="simcse-sup-paraphrase", help="a sentence recipe (`tfcl train list`)")
    parser.add_argument("--option", action="append", help="KEY=VALUE overriding a recipe option (repeatable)")
    parser.add_argument("--epochs", type=int, required=True, help="fixed before the run; the last is the row")
    parser.add_argument("--out", required=True, help="folder for encoder.keras and history.json")
    args = parser.parse_args()

    from tfcl.eval.text_similarity import encoder_embed
    from tfcl.eval.text_zh import evaluate_text
    from tfcl.recipes.simcse import build_simcse
    from tfcl.registry import get_recipe

    recipe = get_recipe(args.recipe)
    options = {**recipe.options, **parse_options(args.option)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, dataset = build_simcse(options)
    curves = {key: [] for key in CURVE_TASKS.values()}
    train_seconds = 0.0

    def score(epoch):
        scores = evaluate_text(encoder_embed(model.encoder), tasks=tuple(CURVE_TASKS))
        minutes = round(train_seconds / 60, 2)
        for key in CURVE_TASKS.values():
            curves[key].append([minutes, round(scores[key], 4)])
        print(f"epoch {epoch}: " + ", ".join(f"{key} {scores[key]:.4f}" for key in CURVE_TASKS.values()), flush=True)

    score(0)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        model.fit(dataset, epochs=1, verbose=2)
        train_seconds += time.perf_counter() - start
        score(epoch)
        model.encoder.save(out / "encoder.keras")
        history = {
            "recipe": "benchmarks/text_curve.py " + " ".join(sys.argv[1:]),
            "options": {key: value for key, value in options.items() if isinstance(value, (str, int, float, bool))},
            "epochs": epoch,
            "planned_epochs": args.epochs,
            "train_seconds": round(train_seconds, 1),
            "curve": curves["stsb_dev_spearman"],
            "lcqmc_curve": curves["lcqmc_dev_auc"],
        }
        (out / "history.json").write_text(json.dumps(history, indent=1))


if __name__ == "__main__":
    main()
