"""One task of the two-worker tests (tests/training/test_multi_worker.py): trains SimCLR and/or CD-TOM for a few steps.

Started by :func:`tfcl.cli.launch.start_workers` (as ``tfcl launch`` does), it trains under
``MultiWorkerMirroredStrategy`` in a cluster of one worker (the reference) or two. The data are fixed
(pre-augmented SimCLR views, seeded CD-TOM shuffling, no dropout) so that the runs can be compared. Each method
trains into ``OUT/<method>`` on the chief (worker 0) and into a temporary folder on the other workers
(:func:`tfcl.strategy.task_out_dir`); the chief also writes the weights it started from and ended with,
``OUT/<method>/{initial,weights}.npz``.

python tests/training/multi_worker_task.py --data DIR --out OUT --methods simclr cdtom --epochs 3 --steps-per-epoch 2
"""

from __future__ import annotations

import argparse
import os

TINY_RESNET = {"stem_filters": 8, "stage_filters": (8, 16), "stage_blocks": (1, 1), "stage_strides": (1, 2)}
TINY_CDTOM = {
    "num_layers": 1,
    "num_heads": 2,
    "hidden_dim": 32,
    "intermediate_dim": 64,
    "document_length": 32,
    "topic_length": 8,
    "vocabulary_size": 600,
    "dropout": 0.0,  # dropout masks drawn per replica could not match the one-worker run's
}


def save_initial_weights(out_dir):
    """A callback writing the weights training starts from (restored ones, on a resumed run) to initial.npz."""
    import keras
    import numpy as np

    class SaveInitialWeights(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            np.savez(os.path.join(out_dir, "initial.npz"), *self.model.get_weights())

    return SaveInitialWeights()


def train_simclr(data_dir, out_dir, strategy, epochs, steps_per_epoch, batch_size):
    import numpy as np
    import tensorflow as tf

    from tfcl.registry import get_recipe
    from tfcl.training import cosine_adamw, fit_and_save

    views = np.load(os.path.join(data_dir, "simclr_views.npz"))
    dataset = tf.data.Dataset.from_tensor_slices((views["view_1"], views["view_2"]))
    dataset = dataset.batch(batch_size, drop_remainder=True).repeat()
    recipe = get_recipe("simclr")
    with strategy.scope():
        model = recipe.build_model(
            views["view_1"].shape[-1], synchronized_bn=strategy.num_replicas_in_sync > 1, **TINY_RESNET
        )
        model.build((None, *views["view_1"].shape[1:]))
        model.compile(optimizer=cosine_adamw(recipe.learning_rate, epochs * steps_per_epoch, recipe.weight_decay))
    fit_and_save(
        model,
        dataset,
        out_dir=out_dir,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        embedding_dim=model.projector.output_dim,
        extra_callbacks=[save_initial_weights(out_dir)],
        verbose=2,
    )
    return model


def train_cdtom(data_dir, out_dir, strategy, epochs, steps_per_epoch, batch_size):
    from tfcl.recipes import cdtom

    model, _ = cdtom.train_cdtom(
        [os.path.join(data_dir, "cdtom_train.tfrecord.gz")],
        [],
        os.path.join(data_dir, "topic_vocab.tsv"),
        out_dir,
        strategy=strategy,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        patience=None,
        verbose=2,
        callbacks=[save_initial_weights(out_dir)],
        **TINY_CDTOM,
    )
    return model


METHODS = {"simclr": train_simclr, "cdtom": train_cdtom}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=sorted(METHODS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps-per-epoch", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="global")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from tfcl.strategy import make_strategy, task_index, task_out_dir

    strategy = make_strategy("multi_worker")
    for method in args.methods:
        keras.utils.set_random_seed(0)
        out_dir = os.path.join(args.out, method)
        with task_out_dir(out_dir, strategy) as task_dir:
            print(f"worker {task_index()} trains {method} into {task_dir}", flush=True)
            model = METHODS[method](args.data, task_dir, strategy, args.epochs, args.steps_per_epoch, args.batch_size)
            np.savez(os.path.join(task_dir, "weights.npz"), *model.get_weights())


if __name__ == "__main__":
    main()
