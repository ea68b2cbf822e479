"""CD-TOM on ingested Weibo posts: the model and data that ``tfcl train cdtom`` and the TFX Trainer train.

Input: the TFRecords, ``topic_vocab.tsv`` and splits written by :mod:`tfcl.data.weibo_ingest` (features of
:func:`tfcl.data.weibo.feature_spec`). The document is the post's ``document`` (its text with the hashtags
removed); its topics are those of its ``topics`` that are in the topic vocabulary (topics under the ingestion's
minimum count are not trained on).

Posts with several topics give one training pair per (post, vocabulary topic): every topic learns from every post
that carries it, and ``topic_ids`` lists the post's other topics so that they are not negatives for that post's
pairs (nor its document for their topics) when they meet in a batch. Posts with more than
``max_topics_per_post`` vocabulary topics are left out as tag spam (what the real data shows:
``benchmarks/results/recipe_choices.md``), as are posts whose document is empty.

Span pairs (``span_rate``, off by default): a post may also give a pair whose topic is a random span of its own
document, a pseudo topic name (the inverse cloze task of retrieval pre-training), so that the topic tower learns to
read names it was never trained on, as new hashtags are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfcl.data import weibo
from tfcl.heads import MLPHead
from tfcl.index import l2_normalised, nearest_centroids, spherical_kmeans
from tfcl.models.cdtom import CDTOM
from tfcl.recipes.base import NotEnoughData, Recipe, Trained, TrainSettings
from tfcl.recipes.simcse import TOWERS, build_text_encoder
from tfcl.text import NgramEncoder, TextEncoder, learn_vocabulary
from tfcl.training import cosine_adamw, fit_and_save

MAX_TOPICS_PER_POST = 5


def read_topic_vocabulary(path: str | Path) -> list[str]:
    """The topics of a ``topic<TAB>count`` vocabulary file, in file order (the order of the topic ids)."""
    return [topic for topic, _ in weibo.read_topic_counts(path)]


def post_pairs(
    files: Sequence[str | Path],
    topics: Sequence[str],
    max_topics_per_post: int = MAX_TOPICS_PER_POST,
    **span_options: Any,
) -> tf.data.Dataset:
    """:func:`topic_pairs` of the posts in TFRecord files written by the ingestion job."""
    spec = {name: weibo.feature_spec()[name] for name in ("document", "topics")}

    def document_and_topics(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        example = tf.io.parse_single_example(record, spec)
        return example["document"], example["topics"]

    files = sorted(str(file) for file in files)
    posts = tf.data.TFRecordDataset(files, compression_type="GZIP").map(document_and_topics)
    return topic_pairs(posts, topics, max_topics_per_post, **span_options)


def document_pairs(
    documents: Sequence[str],
    topic_lists: Sequence[Sequence[str]],
    topics: Sequence[str],
    max_topics_per_post: int = MAX_TOPICS_PER_POST,
    **span_options: Any,
) -> tf.data.Dataset:
    """:func:`topic_pairs` of posts held in memory: ``documents[i]`` carries the hashtags ``topic_lists[i]``."""
    if len(documents) != len(topic_lists):
        raise ValueError(f"{len(documents)} documents but {len(topic_lists)} topic lists")
    hashtags = tf.RaggedTensor.from_row_lengths(
        tf.constant([topic for post_topics in topic_lists for topic in post_topics], tf.string),
        tf.constant([len(post_topics) for post_topics in topic_lists], tf.int64),
    )
    return topic_pairs(
        tf.data.Dataset.from_tensor_slices((tf.constant(list(documents), tf.string), hashtags)),
        topics,
        max_topics_per_post,
        **span_options,
    )


def topic_pairs(
    posts: tf.data.Dataset,
    topics: Sequence[str],
    max_topics_per_post: int = MAX_TOPICS_PER_POST,
    span_rate: float = 0.0,
    span_lengths: tuple[int, int] = (2, 8),
    seed: int | None = None,
) -> tf.data.Dataset:
    """``(document, topic, topic_ids)`` string/string/int32 elements of ``(document, hashtags)`` posts.

    One element per (post, vocabulary topic) of each kept post (see the module docstring); ``topic_ids`` holds the
    pair's topic id first, then the post's other topic ids, padded with -1 to ``max_topics_per_post`` columns.

    ``span_rate`` > 0: each kept post also gives, with that probability (drawn anew on every pass), a pair whose
    topic is a span of ``span_lengths`` characters (inclusive range, at most the document) of its document. The
    span's id is ``len(topics)`` plus a hash of the span (equal spans share it) and joins every pair of that post,
    which then has ``max_topics_per_post + 1`` columns: the post's own span and topics are never its negatives.
    """
    if not 0.0 <= span_rate <= 1.0:
        raise ValueError(f"span_rate must be in [0, 1], got {span_rate}")
    shortest, longest = span_lengths
    if not 1 <= shortest <= longest:
        raise ValueError(f"span_lengths must be (shortest, longest) with 1 <= shortest <= longest, got {span_lengths}")
    width = max_topics_per_post + (1 if span_rate > 0 else 0)
    hash_buckets = 2**31 - 1 - len(topics)
    # One op seed each: ops given the same op seed draw the same sequence, which would tie length, start and rate.
    length_seed, start_seed, rate_seed = (None, None, None) if seed is None else (seed, seed + 1, seed + 2)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(topics, tf.string), tf.range(len(topics), dtype=tf.int32)),
        default_value=-1,
    )

    def ids_of(document: tf.Tensor, hashtags: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        ids = table.lookup(hashtags)
        return document, tf.unique(tf.boolean_mask(ids, ids >= 0)).y

    def keep(document: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        return (tf.strings.length(document) > 0) & (tf.size(ids) > 0) & (tf.size(ids) <= max_topics_per_post)

    def span_of(document: tf.Tensor) -> tf.Tensor:
        characters = tf.strings.length(document, unit="UTF8_CHAR")
        length = tf.minimum(tf.random.uniform([], shortest, longest + 1, tf.int32, seed=length_seed), characters)
        start = tf.random.uniform([], 0, characters - length + 1, tf.int32, seed=start_seed)
        return tf.strings.substr(document, start, length, unit="UTF8_CHAR")

    def pairs(document: tf.Tensor, ids: tf.Tensor) -> tf.data.Dataset:
        names = tf.gather(topics, ids)
        if span_rate > 0:
            span = span_of(document)
            span_id = len(topics) + tf.cast(tf.strings.to_hash_bucket_fast(span, hash_buckets), tf.int32)
            ids, names = tf.cond(
                tf.random.uniform([], seed=rate_seed) < span_rate,
                lambda: (tf.concat([ids, [span_id]], 0), tf.concat([names, [span]], 0)),
                lambda: (ids, names),
            )
        n = tf.size(ids)
        rotations = tf.gather(ids, (tf.range(n)[:, None] + tf.range(n)[None, :]) % n)  # row p starts with ids[p]
        topic_ids = tf.pad(rotations, [[0, 0], [0, width - n]], constant_values=-1)
        return tf.data.Dataset.from_tensor_slices((tf.fill([n], document), names, topic_ids))

    return posts.map(ids_of).filter(keep).flat_map(pairs)


def pair_batches(
    pairs: tf.data.Dataset,
    model: CDTOM,
    batch_size: int,
    shuffle_seed: int | None = None,
    topic_groups: Sequence[int] | None = None,
) -> tf.data.Dataset:
    """Batches of ``(document tokens, topic tokens, topic_ids)`` for ``model`` (tokenised in ``tf.data``).

    ``batch_size`` is global under a ``tf.distribute`` strategy; the last partial batch is dropped so every anchor
    has the same number of negatives. ``shuffle_seed`` set: shuffled anew each epoch, repeated forever.
    ``topic_groups`` (a group id per topic id, e.g. :func:`similar_topic_groups`): each batch holds pairs of one
    group only, so its negatives are similar topics (span pairs form a group of their own).
    """
    if shuffle_seed is not None:
        pairs = pairs.shuffle(16_384, seed=shuffle_seed, reshuffle_each_iteration=True).repeat()
    if topic_groups is None:
        batches = pairs.batch(batch_size, drop_remainder=True)
    else:
        span_id = len(topic_groups)  # every id from here on is a span's: one more group
        groups = tf.constant([*topic_groups, max(topic_groups) + 1], tf.int64)

        def group_of(document: tf.Tensor, topic: tf.Tensor, topic_ids: tf.Tensor) -> tf.Tensor:
            return tf.gather(groups, tf.minimum(topic_ids[0], span_id))

        batches = pairs.group_by_window(
            group_of, lambda _, window: window.batch(batch_size, drop_remainder=True), window_size=batch_size
        )

    def tokenize(
        documents: tf.Tensor, topics: tf.Tensor, topic_ids: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return model.encoder.tokenize(documents), model.topic_tower.tokenize(topics), topic_ids

    return batches.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def similar_topic_groups(
    model: CDTOM,
    documents: Sequence[str],
    pair_topics: Sequence[int],
    num_topics: int,
    num_groups: int,
    seed: int = 0,
    batch_size: int = 1024,
) -> np.ndarray:
    """``[num_topics]`` int32: each topic's group among ``num_groups`` groups of similar topics, by spherical
    k-means (:func:`tfcl.index.spherical_kmeans`) of the topics' centroids (the normalised mean of
    ``model.embed_documents`` of the documents paired with them: ``documents[i]`` with topic ``pair_topics[i]``).
    Topics without a document (a zero centroid) go to group 0."""
    embedded = tf.data.Dataset.from_tensor_slices(list(documents)).batch(batch_size)
    vectors = np.concatenate([model.embed_documents(batch).numpy() for batch in embedded])
    sums = np.zeros((num_topics, vectors.shape[1]), np.float32)
    np.add.at(sums, np.asarray(pair_topics), vectors)
    centroids = l2_normalised(sums)
    named = centroids[np.linalg.norm(sums, axis=1) > 0]
    means = spherical_kmeans(named, num_groups, sample_size=len(named), seed=seed)
    return nearest_centroids(centroids, means).astype(np.int32)


def counted_batches(batches: tf.data.Dataset) -> tf.data.Dataset | None:
    """``batches`` with their number known to ``tf.data`` (filtered and flat-mapped data has none, and Keras then
    learns it by running out of data, with a warning, on the first pass); None if there is no batch."""
    count = int(batches.reduce(0, lambda count, _: count + 1))
    return batches.apply(tf.data.experimental.assert_cardinality(count)) if count else None


def build_cdtom(
    vocabulary: Sequence[str] | str | None,
    *,
    text_tower: str = "bert",
    text_preset: str | None = None,
    shared_towers: bool = False,
    document_length: int = 64,
    topic_length: int = 16,
    num_layers: int = 2,
    num_heads: int = 2,
    hidden_dim: int = 128,
    intermediate_dim: int = 512,
    dropout: float = 0.1,
    ngram_buckets: int = 2**18,
    ngram_orders: Sequence[int] = (1, 2),
    ngram_dim: int = 256,
    max_ngrams: int = 256,
    lexical_dim: int = 0,
    lexical_weight: float = 0.5,
    projector_hidden: Sequence[int] = (),
    projection_dim: int | None = 128,
    temperature: float = 0.1,
    seed: int = 0,
) -> CDTOM:
    """A built, uncompiled :class:`CDTOM` whose towers are :func:`tfcl.recipes.simcse.build_text_encoder`'s:
    ``text_tower="bert"``: random-init BERT towers over ``vocabulary`` (token list or ``vocab.txt``), or towers
    that start from the keras-hub preset folder ``text_preset`` (its vocabulary and sizes); ``"ngram"``: bags of
    hashed character n-grams (:class:`tfcl.text.NgramEncoder`: ``ngram_*``, ``max_ngrams`` and its lexical channel
    ``lexical_*``, for towers without a head; ``dropout`` drops whole n-grams), to be adapted to the training texts
    (:func:`fit_cdtom` does).

    ``shared_towers``: one tower and one projection head (topics are then tokenised to ``document_length``);
    otherwise a topic tower of the same kind and size with its own weights, ``topic_length`` tokens and its own
    head. The heads are :class:`MLPHead` (``projector_hidden`` widths, no batch norm; ``()``: linear, as CLIP's) to
    ``projection_dim``, or none (``projection_dim=None``: the towers' outputs are the embeddings, e.g. n-gram
    towers, whose untrained output is already a random projection of a TF-IDF vector).
    Build under ``strategy.scope()`` for several replicas. Why τ 0.1: ``benchmarks/results/recipe_choices.md``.
    """
    if text_tower not in TOWERS:
        raise ValueError(f"text_tower must be one of {TOWERS}, got {text_tower!r}")
    keras.utils.set_random_seed(seed)

    def tower(sequence_length: int) -> TextEncoder | NgramEncoder:
        return build_text_encoder(
            vocabulary,
            {
                "tower": text_tower,
                "preset": text_preset,
                "sequence_length": sequence_length,
                "num_layers": num_layers,
                "num_heads": num_heads,
                "hidden_dim": hidden_dim,
                "intermediate_dim": intermediate_dim,
                "dropout": dropout,
                "pooling": "mean",
                "ngram_buckets": ngram_buckets,
                "ngram_orders": tuple(ngram_orders),
                "ngram_dim": ngram_dim,
                "max_ngrams": max_ngrams,
                "lexical_dim": lexical_dim,
                "lexical_weight": lexical_weight,
            },
        )

    def head(name: str) -> keras.layers.Layer:
        if projection_dim is None:
            return keras.layers.Identity(name=name)
        return MLPHead(projector_hidden, projection_dim, batch_norm=False, name=name)

    if shared_towers:
        model = CDTOM(tower(document_length), head("projector"), temperature=temperature)
    else:
        model = CDTOM(
            tower(document_length),
            head("document_projector"),
            tower(topic_length),
            head("topic_projector"),
            temperature=temperature,
        )
    model.build((None,))  # a batch of strings
    return model


def train_cdtom(
    train_files: Sequence[str | Path],
    eval_files: Sequence[str | Path],
    topic_vocabulary_file: str | Path,
    out_dir: str | Path,
    *,
    max_topics_per_post: int = MAX_TOPICS_PER_POST,
    span_rate: float = 0.0,
    **options: Any,
) -> tuple[CDTOM, keras.callbacks.History]:
    """Train CD-TOM on ingested TFRecords: :func:`fit_cdtom` on the :func:`post_pairs` of the files (span pairs,
    ``span_rate`` of :func:`topic_pairs`, in training only).

    Args:
      train_files, eval_files: ``*.tfrecord.gz`` files of the ingestion's train and eval splits (``eval_files``
        may be empty: no validation).
      topic_vocabulary_file: the ingestion's ``topic_vocab.tsv``.
      out_dir, **options: see :func:`fit_cdtom`.
    """
    topics = read_topic_vocabulary(topic_vocabulary_file)
    validation = post_pairs(eval_files, topics, max_topics_per_post) if len(eval_files) else None
    train = post_pairs(train_files, topics, max_topics_per_post, span_rate=span_rate, seed=options.get("seed"))
    return fit_cdtom(train, validation, topics, out_dir, **options)


def fit_cdtom(
    train_pairs: tf.data.Dataset,
    eval_pairs: tf.data.Dataset | None,
    topics: Sequence[str],
    out_dir: str | Path,
    *,
    strategy: tf.distribute.Strategy | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    steps_per_epoch: int | None = None,
    learning_rate: float = 5e-4,
    weight_decay: float = 0.01,
    patience: int | None = 1,
    vocabulary: Sequence[str] | str = "learned",
    vocabulary_size: int = 8000,
    seed: int = 0,
    verbose: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    hard_negative_groups: int = 0,
    **model_options: Any,
) -> tuple[CDTOM, keras.callbacks.History]:
    """Train CD-TOM on :func:`topic_pairs` (:func:`tfcl.training.fit_and_save`); returns ``(model, history)``.

    Args:
      train_pairs, eval_pairs: ``(document, topic, topic_ids)`` pairs of :func:`topic_pairs` over ``topics``
        (``eval_pairs`` None: no validation).
      topics: the topic vocabulary (the order of the topic ids).
      out_dir: ``backup/`` (``BackupAndRestore``: a killed run started again with the same arguments resumes from
        its last finished epoch), ``logs/`` (TensorBoard), ``model.keras``, ``history.json``.
      strategy: a ``tf.distribute`` strategy (default: the current one); ``batch_size`` is global.
      steps_per_epoch: default one pass over the training pairs.
      learning_rate, weight_decay: AdamW (n-gram towers: LazyAdamW, which updates only the table rows a batch
        touches), linear warm-up then cosine decay over the run.
      patience: with ``eval_pairs``, stop once the validation loss has not improved for ``patience`` epochs and
        keep the weights of its best epoch (Keras ``EarlyStopping``; a resumed run only knows the epochs since it
        resumed). ``None``: train every epoch and keep the last weights.
      vocabulary: BERT towers: ``"learned"`` (WordPiece of ``vocabulary_size`` learned from the training documents
        and topics), or a token list or ``vocab.txt`` path (e.g. the BERT-Chinese one); not used with a
        ``text_preset`` in ``model_options`` (the preset's) nor by n-gram towers, whose n-gram weights are set to
        the inverse document frequencies of the training documents and topics instead.
      callbacks: extra Keras callbacks.
      hard_negative_groups: > 1: the topics are split into that many groups of similar topics by the untrained
        model (:func:`similar_topic_groups`) and every training batch is drawn from one group (hard negatives).
      **model_options: keyword arguments of :func:`build_cdtom`.
    """
    strategy = strategy or tf.distribute.get_strategy()
    documents, pair_topics = [], []
    for document, _, topic_ids in train_pairs.as_numpy_iterator():
        documents.append(document.decode("utf-8"))
        pair_topics.append(int(topic_ids[0]))
    steps_per_epoch = steps_per_epoch or len(documents) // batch_size
    if steps_per_epoch < 1:
        raise NotEnoughData(
            f"{len(documents)} (post, topic) training pairs do not fill one batch of {batch_size}: "
            "ingest more posts or lower --batch-size"
        )
    if model_options.get("text_preset") or model_options.get("text_tower") == "ngram":
        vocabulary = None
    elif vocabulary == "learned":
        vocabulary = learn_vocabulary(documents + list(topics), vocabulary_size)
    with strategy.scope():
        model = build_cdtom(vocabulary, seed=seed, **model_options)
        for tower in (model.encoder, model.topic_encoder):  # the topic encoder is None with shared towers
            if isinstance(tower, NgramEncoder):
                tower.adapt([*dict.fromkeys(documents), *topics])
        lazy = model_options.get("text_tower") == "ngram"  # sparse updates of the n-gram tables
        model.compile(optimizer=cosine_adamw(learning_rate, epochs * steps_per_epoch, weight_decay, lazy=lazy))
    validation = None if eval_pairs is None else counted_batches(pair_batches(eval_pairs, model, batch_size))
    groups = None
    if hard_negative_groups > 1:
        in_vocabulary = [i for i, topic in enumerate(pair_topics) if topic < len(topics)]  # not span pairs
        groups = similar_topic_groups(
            model,
            [documents[i] for i in in_vocabulary],
            [pair_topics[i] for i in in_vocabulary],
            len(topics),
            hard_negative_groups,
            seed,
        )
    history = fit_and_save(
        model,
        pair_batches(train_pairs, model, batch_size, shuffle_seed=seed, topic_groups=groups),
        out_dir=out_dir,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        embedding_dim=int(model.embed_documents(tf.constant([""])).shape[-1]),
        validation_data=validation,
        patience=patience,
        extra_callbacks=callbacks,
        verbose=verbose,
    )
    return model, history


def ingested_posts(out_dir: str | Path, split: str) -> list[weibo.WeiboPost]:
    """The :class:`tfcl.data.weibo.WeiboPost` s of one split written by ``tfcl ingest weibo ... --out OUT_DIR``."""
    return [weibo.from_example(features) for features in weibo.load_split(out_dir, split)]


def train_on_ingested_posts(recipe: Recipe, settings: TrainSettings) -> Trained:
    """A :class:`Recipe` trainer: CD-TOM on the posts ingested under ``settings.weibo`` (``tfcl ingest weibo ...
    --out DIR``; early stopping on its eval split), its towers ``settings.text_tower`` (BERT by default), from
    ``settings.text_preset`` if given. The :class:`Trained` data: the train posts and the topic vocabulary, what
    the export indexes."""
    if not settings.weibo:
        raise SystemExit(
            f"tfcl train {recipe.name}: --weibo DIR is required (the output of `tfcl ingest weibo ... --out DIR`)"
        )
    from tfcl.data.weibo_ingest import TOPIC_VOCAB_FILE  # Apache Beam: imported only when needed

    files = {split: sorted(tf.io.gfile.glob(f"{settings.weibo}/{split}/*.tfrecord.gz")) for split in ("train", "eval")}
    vocabulary_file = f"{settings.weibo}/{TOPIC_VOCAB_FILE}"
    model, history = train_cdtom(
        files["train"],
        files["eval"],
        vocabulary_file,
        settings.out_dir,
        strategy=settings.strategy,
        epochs=recipe.epochs_for(settings),
        steps_per_epoch=settings.steps_per_epoch,
        batch_size=recipe.batch_size_for(settings),
        learning_rate=recipe.learning_rate_for(settings),
        weight_decay=recipe.weight_decay,
        seed=settings.seed,
        verbose=settings.verbose,
        text_preset=settings.text_preset,
        **({"text_tower": settings.text_tower} if settings.text_tower else {}),
    )
    posts = ingested_posts(settings.weibo, "train")
    return Trained(model, history, data={"posts": posts, "topics": read_topic_vocabulary(vocabulary_file)})
