"""CLIP and WenLan on pictures with Chinese text: the model, batches, training and evaluation used by
``tfcl train clip|wenlan``, W-CLIP (:mod:`tfcl.recipes.wclip`) and ``benchmarks/image_text.py``.

Pairs are those of :func:`tfcl.data.images.picture_text_pairs` (emoji with their label and tags, Tux Paint stamps
with their captions) or any dict with the same ``image`` / ``text`` columns. Pictures are decoded once, before
training (uint8 arrays); an exported model takes the encoded bytes and decodes them the same way.
"""

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfcl.encoders import PictureEncoder
from tfcl.eval.image_text import class_embeddings, retrieval_metrics, zero_shot_accuracy
from tfcl.heads import MLPHead
from tfcl.models.clip import CLIP
from tfcl.models.wenlan import WenLan
from tfcl.text import TextEncoder
from tfcl.training import cosine_adamw, fit_and_save

METHODS = ("clip", "wenlan")


def build_image_text_model(
    method,
    vocabulary,
    *,
    image_size=64,
    image_encoder="resnet_cpu",
    text_length=32,
    num_layers=2,
    num_heads=2,
    hidden_dim=128,
    intermediate_dim=512,
    dropout=0.1,
    projection_dim=128,
    temperature=0.07,
    queue_size=4096,
    base_momentum=0.99,
    synchronized_bn=False,
    seed=0,
):
    """A built, uncompiled :class:`CLIP` or :class:`WenLan`: a :class:`PictureEncoder` (``image_encoder``: a small
    ResNet preset or a keras-hub preset) and a random-init BERT over ``vocabulary`` (token list or ``vocab.txt``),
    each with a linear projection to ``projection_dim`` (as CLIP's). ``temperature``: CLIP's initial 1 / logit
    scale, WenLan's fixed τ. ``queue_size``, ``base_momentum``: WenLan's. Build under ``strategy.scope()`` for
    several replicas (with ``synchronized_bn``)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    keras.utils.set_random_seed(seed)
    towers = (
        PictureEncoder.from_preset(image_encoder, image_size, synchronized_bn=synchronized_bn),
        MLPHead((), projection_dim, batch_norm=False, name="image_projector"),
        TextEncoder.from_vocabulary(
            vocabulary,
            sequence_length=text_length,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            name="text_encoder",
        ),
        MLPHead((), projection_dim, batch_norm=False, name="text_projector"),
    )
    if method == "clip":
        model = CLIP(*towers, logit_scale=1.0 / temperature)
    else:
        model = WenLan(*towers, temperature=temperature, queue_size=queue_size, base_momentum=base_momentum)
    model.build((None, image_size, image_size, 3))
    return model


def pair_ids_of(texts):
    """int32 ids of the distinct texts: pairs with the same text are no negatives for each other."""
    return np.unique(np.asarray(texts), return_inverse=True)[1].astype(np.int32)


def pair_batches(images, texts, model, batch_size, pair_ids=None, shuffle_seed=None):
    """Batches of ``(images, text tokens[, pair_ids])`` for ``model`` (texts tokenised in ``tf.data``).

    ``batch_size`` is global under a ``tf.distribute`` strategy; the last partial batch is dropped. With
    ``shuffle_seed``: shuffled anew each epoch, repeated forever.
    """
    columns = (images, np.asarray(texts, dtype=object).astype(str)) + (() if pair_ids is None else (pair_ids,))
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(texts), seed=shuffle_seed, reshuffle_each_iteration=True).repeat()

    def tokenize(images, texts, *ids):
        return (images, model.text_encoder.tokenize(texts), *ids)

    return (
        dataset.batch(batch_size, drop_remainder=True)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def embed_in_batches(embed, inputs, batch_size=256):
    """``embed`` (a batch → L2-normalised ``[n, d]``) over ``inputs`` (array or list of strings), as float32."""
    return np.concatenate(
        [
            np.asarray(embed(tf.constant(inputs[start : start + batch_size])))
            for start in range(0, len(inputs), batch_size)
        ]
    )


def read_pictures(paths):
    """The bytes of each picture file (any file system ``tf.io.gfile`` reads)."""
    return [tf.io.gfile.GFile(path, "rb").read() for path in paths]


def evaluate_image_text(model, pairs, batch_size=256):
    """Retrieval both ways on the held-out pairs (:func:`retrieval_metrics`; pairs with the same text count as
    right answers) and zero-shot accuracy over each source's Chinese category names (``zero_shot_<source>``)."""
    held_out = {key: value[pairs["held_out"]] for key, value in pairs.items()}
    images = embed_in_batches(model.embed_images, held_out["image"], batch_size)
    texts = embed_in_batches(model.embed_texts, list(held_out["text"]), batch_size)
    metrics = retrieval_metrics(images, texts, np.equal.outer(held_out["text"], held_out["text"]))
    for source in np.unique(held_out["source"]):
        rows = (held_out["source"] == source) & (held_out["category_zh"] != "")
        names = sorted(set(pairs["category_zh"][(pairs["source"] == source) & (pairs["category_zh"] != "")]))
        classes = class_embeddings(lambda prompts: embed_in_batches(model.embed_texts, prompts, batch_size), names)
        labels = [names.index(name) for name in held_out["category_zh"][rows]]
        metrics[f"zero_shot_{source}"] = zero_shot_accuracy(images[rows], classes, labels)
    return metrics


def fit_pairs(
    build,
    batches,
    out_dir,
    *,
    strategy=None,
    epochs,
    steps_per_epoch,
    learning_rate,
    weight_decay,
    time_budget=None,
    budget_clock="wall",
    verbose=1,
):
    """Build (``build(synchronized_bn)``, under ``strategy``'s scope), compile and fit an image–text model on
    ``batches(model)``; returns ``(model, history)``. AdamW with warm-up and cosine decay over
    ``epochs × steps_per_epoch``, or, with ``time_budget`` (seconds on ``budget_clock``, see
    :class:`tfcl.callbacks.TimeBudget`), a constant rate, as the number of steps is not known. ``out_dir`` gets what
    :func:`tfcl.training.fit_and_save` writes (resume from ``backup/``, TensorBoard logs, ``model.keras``,
    ``history.json``)."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build(strategy.num_replicas_in_sync > 1)
        optimizer = (
            keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
            if time_budget
            else cosine_adamw(learning_rate, epochs * steps_per_epoch, weight_decay)
        )
        model.compile(optimizer=optimizer)
    history = fit_and_save(
        model,
        batches(model),
        out_dir=out_dir,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        embedding_dim=model.projector.output_dim,
        time_budget=time_budget,
        budget_clock=budget_clock,
        verbose=verbose,
    )
    return model, history


def train_image_text(
    method,
    pairs,
    vocabulary,
    out_dir,
    *,
    epochs=10,
    batch_size=64,
    steps_per_epoch=None,
    learning_rate=1e-3,
    weight_decay=0.05,
    time_budget=None,
    budget_clock="wall",
    strategy=None,
    seed=0,
    verbose=1,
    **model_options,
):
    """Train CLIP or WenLan on the pairs not held out (:func:`fit_pairs`); returns ``(model, history)``.

    ``out_dir`` also gets ``metrics.json`` (:func:`evaluate_image_text`). ``**model_options`` go to
    :func:`build_image_text_model`.
    """
    train = ~pairs["held_out"]
    texts = pairs["text"][train]
    model, history = fit_pairs(
        lambda synchronized_bn: build_image_text_model(
            method, vocabulary, seed=seed, synchronized_bn=synchronized_bn, **model_options
        ),
        lambda model: pair_batches(
            pairs["image"][train], texts, model, batch_size, pair_ids_of(texts), shuffle_seed=seed
        ),
        out_dir,
        strategy=strategy,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch or int(train.sum()) // batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        time_budget=time_budget,
        budget_clock=budget_clock,
        verbose=verbose,
    )
    metrics = evaluate_image_text(model, pairs)
    (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return model, history


def export_image_text(model, pairs, path, k=10):
    """The served picture model (:func:`tfcl.apps.pictures.export_picture_model`) of a trained CLIP or WenLan,
    indexing every pair of ``pairs``: pictures by their files' bytes, texts by the same id (``source:file name``)."""
    from tfcl.apps.pictures import export_picture_model

    ids = [f"{source}:{Path(file).name}" for source, file in zip(pairs["source"], pairs["path"])]
    return export_picture_model(model, ids, read_pictures(pairs["path"]), ids, list(pairs["text"]), path, k)
