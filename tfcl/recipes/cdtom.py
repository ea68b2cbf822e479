"""CD-TOM on ingested Weibo posts: the model and data that ``tfcl train cdtom`` and the TFX Trainer train.

Input: the TFRecords, ``topic_vocab.tsv`` and splits written by :mod:`tfcl.data.weibo_ingest` (features of
:func:`tfcl.data.weibo.feature_spec`). The document is the post's ``document`` (its text with the hashtags
removed); its topics are those of its ``topics`` that are in the topic vocabulary (topics under the ingestion's
minimum count are not trained on).

Posts with several topics give one training pair per (post, vocabulary topic): every topic learns from every post
that carries it, and ``topic_ids`` lists the post's other topics so that they are not negatives for that post's
pairs (nor its document for their topics) when they meet in a batch. Posts with more than
``max_topics_per_post`` vocabulary topics are left out as tag spam (on the real 2020-03-18 day, a few hundred posts
stuff 10 to 65 hashtags), as are posts whose document is empty.
"""

import json
from pathlib import Path

import keras
import tensorflow as tf

from tfcl.apps.weibo import export_weibo_model
from tfcl.callbacks import CollapseGuard
from tfcl.data import weibo
from tfcl.heads import MLPHead
from tfcl.models.cdtom import CDTOM
from tfcl.text import TextEncoder, learn_vocabulary
from tfcl.training import cosine_adamw

MAX_TOPICS_PER_POST = 5
TOPIC_INDEX = "combined"  # the topic keys of the exported model (tfcl.apps.weibo.topic_keys)


def read_topic_vocabulary(path):
    """The topics of a ``topic<TAB>count`` vocabulary file, in file order (the order of the topic ids)."""
    return [topic for topic, _ in weibo.read_topic_counts(path)]


def post_pairs(files, topics, max_topics_per_post=MAX_TOPICS_PER_POST):
    """``(document, topic, topic_ids)`` string/string/int32 ``[max_topics_per_post]`` elements of TFRecord files.

    One element per (post, vocabulary topic) of each kept post (see the module docstring); ``topic_ids`` holds the
    pair's topic id first, then the post's other topic ids, padded with -1.
    """
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(topics, tf.string), tf.range(len(topics), dtype=tf.int32)),
        default_value=-1,
    )
    spec = {name: weibo.feature_spec()[name] for name in ("document", "topics")}

    def ids_of(record):
        example = tf.io.parse_single_example(record, spec)
        ids = table.lookup(example["topics"])
        return example["document"], tf.unique(tf.boolean_mask(ids, ids >= 0)).y

    def keep(document, ids):
        return (tf.strings.length(document) > 0) & (tf.size(ids) > 0) & (tf.size(ids) <= max_topics_per_post)

    def pairs(document, ids):
        n = tf.size(ids)
        rotations = tf.gather(ids, (tf.range(n)[:, None] + tf.range(n)[None, :]) % n)  # row p starts with ids[p]
        topic_ids = tf.pad(rotations, [[0, 0], [0, max_topics_per_post - n]], constant_values=-1)
        return tf.data.Dataset.from_tensor_slices((tf.fill([n], document), tf.gather(topics, ids), topic_ids))

    files = sorted(str(file) for file in files)
    return tf.data.TFRecordDataset(files, compression_type="GZIP").map(ids_of).filter(keep).flat_map(pairs)


def pair_batches(pairs, model, batch_size, shuffle_seed=None):
    """Batches of ``(document tokens, topic tokens, topic_ids)`` for ``model`` (tokenised in ``tf.data``).

    ``batch_size`` is global under a ``tf.distribute`` strategy; the last partial batch is dropped so every anchor
    has the same number of negatives. ``shuffle_seed`` set: shuffled anew each epoch, repeated forever.
    """
    if shuffle_seed is not None:
        pairs = pairs.shuffle(16_384, seed=shuffle_seed, reshuffle_each_iteration=True).repeat()

    def tokenize(documents, topics, topic_ids):
        return model.encoder.tokenize(documents), model.topic_tower.tokenize(topics), topic_ids

    return (
        pairs.batch(batch_size, drop_remainder=True)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def build_cdtom(
    vocabulary,
    *,
    shared_towers=False,
    document_length=64,
    topic_length=16,
    num_layers=2,
    num_heads=2,
    hidden_dim=128,
    intermediate_dim=512,
    dropout=0.1,
    projector_hidden=(),
    projection_dim=128,
    temperature=0.1,
    seed=0,
):
    """A built, uncompiled :class:`CDTOM`: random-init BERT towers over ``vocabulary`` (token list or ``vocab.txt``).

    ``shared_towers``: one tower and one projection head (topics are then tokenised to ``document_length``);
    otherwise a topic tower of the same size with its own weights, ``topic_length`` tokens and its own head. The
    heads are :class:`MLPHead` (``projector_hidden`` widths, no batch norm; ``()``: linear, as CLIP's). Build under
    ``strategy.scope()`` for several replicas. τ 0.1: on the real 2020-03-18 day it did as well as 0.05 or better
    (benchmarks/weibo_topics.py).
    """
    keras.utils.set_random_seed(seed)

    def tower(sequence_length):
        return TextEncoder.from_vocabulary(
            vocabulary,
            sequence_length=sequence_length,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            pooling="mean",
        )

    def head(name):
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
    train_files,
    eval_files,
    topic_vocabulary_file,
    out_dir,
    *,
    strategy=None,
    epochs=10,
    batch_size=64,
    steps_per_epoch=None,
    learning_rate=5e-4,
    weight_decay=0.01,
    patience=1,
    vocabulary="learned",
    vocabulary_size=8000,
    max_topics_per_post=MAX_TOPICS_PER_POST,
    seed=0,
    verbose=1,
    callbacks=(),
    **model_options,
):
    """Train CD-TOM on ingested TFRecords; returns ``(model, history)``.

    Args:
      train_files, eval_files: ``*.tfrecord.gz`` files of the ingestion's train and eval splits (``eval_files``
        may be empty: no validation).
      topic_vocabulary_file: the ingestion's ``topic_vocab.tsv``.
      out_dir: ``backup/`` (``BackupAndRestore``: a killed run started again with the same arguments resumes from
        its last finished epoch), ``logs/`` (TensorBoard), ``model.keras``, ``history.json``.
      strategy: a ``tf.distribute`` strategy (default: the current one); ``batch_size`` is global.
      steps_per_epoch: default one pass over the training pairs.
      learning_rate, weight_decay: AdamW, linear warm-up then cosine decay over the run.
      patience: with ``eval_files``, stop once the validation loss has not improved for ``patience`` epochs and
        keep the weights of its best epoch (Keras ``EarlyStopping``; a resumed run only knows the epochs since it
        resumed). ``None``: train every epoch and keep the last weights.
      vocabulary: ``"learned"`` (WordPiece of ``vocabulary_size`` learned from the training documents and
        topics), or a token list or ``vocab.txt`` path (e.g. the BERT-Chinese one).
      callbacks: extra Keras callbacks.
      **model_options: keyword arguments of :func:`build_cdtom`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    strategy = strategy or tf.distribute.get_strategy()
    topics = read_topic_vocabulary(topic_vocabulary_file)
    train_pairs = post_pairs(train_files, topics, max_topics_per_post)
    documents = [document.decode("utf-8") for document, _, _ in train_pairs.as_numpy_iterator()]
    steps_per_epoch = steps_per_epoch or len(documents) // batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{len(documents)} training pairs do not fill one batch of {batch_size}")
    if vocabulary == "learned":
        vocabulary = learn_vocabulary(documents + topics, vocabulary_size)
    with strategy.scope():
        model = build_cdtom(vocabulary, seed=seed, **model_options)
        model.compile(optimizer=cosine_adamw(learning_rate, epochs * steps_per_epoch, weight_decay))
    validation = None
    if len(eval_files):
        validation = pair_batches(post_pairs(eval_files, topics, max_topics_per_post), model, batch_size)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out_dir / "backup")),
        keras.callbacks.TensorBoard(str(out_dir / "logs"), update_freq="epoch"),
        CollapseGuard(model.projector.output_dim),
        *(
            []
            if validation is None or patience is None
            else [keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True)]
        ),
        *callbacks,
    ]
    history = model.fit(
        pair_batches(train_pairs, model, batch_size, shuffle_seed=seed),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        callbacks=callbacks,
        verbose=verbose,
    )
    model.save(out_dir / "model.keras")
    (out_dir / "history.json").write_text(json.dumps(history.history, indent=1, default=float))
    return model, history


def export_cdtom(
    model, train_posts, topics, path, topic_index=TOPIC_INDEX, k=10, max_topics_per_post=MAX_TOPICS_PER_POST
):
    """Write the Weibo SavedModel of a trained CD-TOM (:func:`tfcl.apps.export_weibo_model`); returns ``path``.

    The similar-post index holds the ``train_posts`` (:class:`tfcl.data.weibo.WeiboPost`) with a document; the
    topic keys come from the ones CD-TOM trains on (tag spam is left out here too).
    """
    index = [post for post in train_posts if post.document]
    known = set(topics)
    trained_on = [post.topics if len(known.intersection(post.topics)) <= max_topics_per_post else () for post in index]
    return export_weibo_model(
        model,
        topics,
        [post.id for post in index],
        [post.document for post in index],
        path,
        k=k,
        topic_index=topic_index,
        post_topics=trained_on,
    )
