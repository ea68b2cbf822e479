"""Training loop glue shared by the CLI, the TFX Trainer and the benchmarks: optimiser schedule, callbacks,
checkpoint/resume and saving."""

import json
from pathlib import Path

import keras

from tfcl.augment import view_dataset
from tfcl.callbacks import CollapseGuard, EncoderEvaluation, TimeBudget
from tfcl.checkpoint import RunBackup
from tfcl.models import MomentumContrastiveModel
from tfcl.recipes.image import RECIPES, build_image_model


def cosine_adamw(learning_rate, total_steps, weight_decay, warmup_fraction=0.05):
    """AdamW with linear warm-up then cosine decay to 0 over ``total_steps``."""
    warmup = max(1, int(total_steps * warmup_fraction))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, total_steps - warmup), warmup_target=learning_rate, warmup_steps=warmup
    )
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


def fit_and_save(
    model,
    dataset,
    *,
    out_dir,
    epochs,
    steps_per_epoch,
    embedding_dim,
    evaluation=(),
    time_budget=None,
    budget_clock="wall",
    extra_callbacks=(),
    verbose=1,
):
    """``model.fit`` with resume, logs and a collapse guard; everything goes under ``out_dir``:

    ``backup/`` (``BackupAndRestore``: a killed run started again with the same arguments resumes from its last
    finished epoch), ``logs/`` (TensorBoard), ``model.keras`` and ``history.json``. ``evaluation`` callbacks add
    their metrics to the epoch logs; ``time_budget`` (seconds of training on ``budget_clock``, evaluation excluded;
    see :class:`tfcl.callbacks.TimeBudget`) stops early.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        *([TimeBudget(time_budget, budget_clock)] if time_budget else []),  # first, so evaluation time does not count
        RunBackup(out_dir),
        *evaluation,  # before TensorBoard, so their metrics are logged
        keras.callbacks.TensorBoard(str(out_dir / "logs"), update_freq="epoch"),
        CollapseGuard(embedding_dim),
        *extra_callbacks,
    ]
    history = model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose)
    model.save(out_dir / "model.keras")
    (out_dir / "history.json").write_text(json.dumps(history.history, indent=1, default=float))
    return history


def train_image_method(
    method,
    train,
    *,
    out_dir,
    epochs,
    batch_size=None,
    steps_per_epoch=None,
    encoder="resnet_cpu",
    strategy=None,
    eval_data=None,
    eval_every=1,
    time_budget=None,
    budget_clock="wall",
    jit_compile=False,
    learning_rate=None,
    verbose=1,
    extra_callbacks=(),
):
    """Train a named image method on ``train`` = (images uint8 [N, H, W, C], labels); see :func:`fit_and_save`.

    ``batch_size`` is global (default: the recipe's); ``eval_data`` = (train, test) arrays for the per-epoch kNN
    monitor.
    """
    import tensorflow as tf

    images = train[0]
    image_size, channels = images.shape[1], images.shape[3]
    recipe = RECIPES[method]
    batch_size = batch_size or recipe.batch_size
    strategy = strategy or tf.distribute.get_strategy()
    steps_per_epoch = steps_per_epoch or len(images) // batch_size
    with strategy.scope():
        model = build_image_model(method, channels, encoder, synchronized_bn=strategy.num_replicas_in_sync > 1)
        model.build((None, image_size, image_size, channels))
        if isinstance(model, MomentumContrastiveModel):
            model.total_steps = epochs * steps_per_epoch  # the cosine EMA schedule runs over the whole training
        model.compile(
            optimizer=cosine_adamw(
                learning_rate or recipe.learning_rate, epochs * steps_per_epoch, recipe.weight_decay
            ),
            jit_compile=jit_compile,
        )
    dataset = view_dataset(images, recipe.augmentation(image_size, channels), batch_size, repeat=True)
    evaluation = [EncoderEvaluation(*eval_data, protocol="knn", every=eval_every)] if eval_data is not None else []
    history = fit_and_save(
        model,
        dataset,
        out_dir=out_dir,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        embedding_dim=model.projector.output_dim,
        evaluation=evaluation,
        time_budget=time_budget,
        budget_clock=budget_clock,
        extra_callbacks=extra_callbacks,
        verbose=verbose,
    )
    return model, history
