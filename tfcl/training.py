"""Training loop glue shared by every recipe: optimiser schedule, callbacks, checkpoint/resume and saving.

A leaf under the recipes: it fits, checkpoints and saves whatever model and data it is given, and knows no method.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from tfcl.callbacks import CollapseGuard, TimeBudget
from tfcl.checkpoint import RunBackup
from tfcl.optimizers import LazyAdamW


def cosine_adamw(
    learning_rate: float, total_steps: int, weight_decay: float, warmup_fraction: float = 0.05, lazy: bool = False
) -> keras.optimizers.AdamW:
    """AdamW (``lazy``: :class:`tfcl.optimizers.LazyAdamW`) with linear warm-up then cosine decay to 0 over
    ``total_steps``."""
    warmup = max(1, int(total_steps * warmup_fraction))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, total_steps - warmup), warmup_target=learning_rate, warmup_steps=warmup
    )
    return (LazyAdamW if lazy else keras.optimizers.AdamW)(schedule, weight_decay=weight_decay)


def fit_and_save(
    model: keras.Model,
    dataset: tf.data.Dataset,
    *,
    out_dir: str | Path,
    epochs: int,
    steps_per_epoch: int | None,
    embedding_dim: int,
    evaluation: Sequence[keras.callbacks.Callback] = (),
    validation_data: tf.data.Dataset | None = None,
    patience: int | None = None,
    time_budget: float | None = None,
    budget_clock: str = "wall",
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 1,
) -> keras.callbacks.History:
    """``model.fit`` with resume, logs and a collapse guard; everything goes under ``out_dir``:

    ``backup/`` (:class:`tfcl.checkpoint.RunBackup`: a killed run started again with the same arguments resumes
    from its last finished epoch), ``logs/`` (TensorBoard), ``model.keras`` and ``history.json``. ``evaluation``
    callbacks add their metrics to the epoch logs; ``time_budget`` (seconds of training on ``budget_clock``,
    evaluation excluded; see :class:`tfcl.callbacks.TimeBudget`) stops early. ``validation_data`` is scored after
    each epoch (``val_loss``); with ``patience`` too, training stops once it has not improved for ``patience``
    epochs and keeps the weights of its best epoch (Keras ``EarlyStopping``; a resumed run only knows the epochs
    since it resumed).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    early_stopping = validation_data is not None and patience is not None
    callbacks = [
        *([TimeBudget(time_budget, budget_clock)] if time_budget else []),  # first, so evaluation time does not count
        RunBackup(out_dir),
        *evaluation,  # before TensorBoard, so their metrics are logged
        keras.callbacks.TensorBoard(str(out_dir / "logs"), update_freq="epoch"),
        CollapseGuard(embedding_dim),
        *(
            [keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True)]
            if early_stopping
            else []
        ),
        *extra_callbacks,
    ]
    history = model.fit(
        dataset,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=verbose,
    )
    model.save(out_dir / "model.keras")
    (out_dir / "history.json").write_text(json.dumps(history.history, indent=1, default=float))
    return history
