"""CD-TOM: symmetric InfoNCE vs NumPy, false-negative masking, the model, distributed equivalence, the recipe and
``tfcl train cdtom``."""

import argparse
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from reference import assert_distributed_equivalence, log_softmax, normalise, two_replica_strategy
from text_helpers import POSTS, TOPICS, VOCABULARY, tiny_cdtom
from training_helpers import Interrupt

from tfcl.cli import train as train_cli
from tfcl.cli.console import UserError
from tfcl.data import weibo, weibo_ingest, weibo_sample
from tfcl.losses.symmetric_info_nce import symmetric_info_nce
from tfcl.models.cdtom import CDTOM
from tfcl.optimizers import LazyAdamW
from tfcl.recipes.cdtom import (
    build_cdtom,
    document_pairs,
    fit_cdtom,
    pair_batches,
    post_pairs,
    similar_topic_groups,
    train_cdtom,
)
from tfcl.text import NgramEncoder


def symmetric_info_nce_reference(a, b, temperature, a_labels=None, b_labels=None):
    """Literal ½[CE(a→b) + CE(b→a)]; a candidate sharing a label with the anchor (not its positive) is dropped."""

    def label_sets(labels):
        if labels is None:
            return [set() for _ in range(len(a))]
        return [{int(x) for x in np.atleast_1d(row) if x >= 0} for row in labels]

    a_sets = label_sets(a_labels)
    b_sets = label_sets(a_labels if b_labels is None else b_labels)

    def direction(anchors, candidates, anchor_sets, candidate_sets):
        losses = []
        for i in range(len(anchors)):
            kept = [j for j in range(len(candidates)) if j == i or not anchor_sets[i] & candidate_sets[j]]
            logits = candidates[kept] @ anchors[i] / temperature
            losses.append(-log_softmax(logits[None])[0, kept.index(i)])
        return np.mean(losses)

    a, b = normalise(a.astype(np.float64)), normalise(b.astype(np.float64))
    return 0.5 * (direction(a, b, a_sets, b_sets) + direction(b, a, b_sets, a_sets))


def topic_ids(posts=POSTS, width=3):
    """``[n, width]``: each post's first topic id, then its others, -1 padding."""
    rows = [[TOPICS.index(topic) for topic in topics] for _, topics in posts]
    return np.array([row + [-1] * (width - len(row)) for row in rows], np.int32)


def batch_of(posts=POSTS):
    return (
        tf.constant([document for document, _ in posts]),
        tf.constant([topics[0] for _, topics in posts]),
        topic_ids(posts),
    )


def test_loss_matches_numpy_reference_with_and_without_labels():
    rng = np.random.default_rng(0)
    a, b = (normalise(rng.normal(size=(8, 6))).astype(np.float32) for _ in range(2))
    ids = topic_ids()
    single = np.array([0, 1, 0, 2, 1, 3, 0, 2], np.int32)
    for temperature in (0.05, 0.5):
        cases = [(None, None), (single, None), (ids, ids[:, :1]), (ids, ids[:, 0])]
        for a_labels, b_labels in cases:
            np.testing.assert_allclose(
                symmetric_info_nce(a, b, temperature, a_labels, b_labels).numpy(),
                symmetric_info_nce_reference(a, b, temperature, a_labels, b_labels),
                rtol=1e-5,
            )


def test_masking_never_removes_the_positive_and_only_lowers_the_loss():
    rng = np.random.default_rng(1)
    a, b = (normalise(rng.normal(size=(6, 4))).astype(np.float32) for _ in range(2))
    same = np.zeros(6, np.int32)  # every pair shares the label: only the positive is left
    assert symmetric_info_nce(a, b, 0.1, same).numpy() == pytest.approx(0.0, abs=1e-6)
    distinct = np.arange(6, dtype=np.int32)  # no false negatives: the plain CLIP loss
    np.testing.assert_allclose(symmetric_info_nce(a, b, 0.1, distinct).numpy(), symmetric_info_nce(a, b, 0.1).numpy())
    padding_only = np.full((6, 2), -1, np.int32)  # -1 is padding, not a shared label
    np.testing.assert_allclose(
        symmetric_info_nce(a, b, 0.1, padding_only).numpy(), symmetric_info_nce(a, b, 0.1).numpy()
    )
    assert symmetric_info_nce(a, b, 0.1, np.array([0, 0, 1, 1, 2, 2])).numpy() < symmetric_info_nce(a, b, 0.1).numpy()


@pytest.mark.parametrize("shared", [False, True])
def test_model_loss_is_the_reference_on_its_own_projections(shared):
    model = tiny_cdtom(shared)
    documents, topics, ids = batch_of()
    loss, (z_documents, z_topics) = model.compute_contrastive_loss((documents, topics, ids), training=False)
    np.testing.assert_allclose(z_documents.numpy(), normalise(model.project(documents).numpy()), atol=1e-6)
    np.testing.assert_allclose(z_topics.numpy(), model.embed_topics(topics).numpy(), atol=1e-6)
    np.testing.assert_allclose(
        loss.numpy(),
        symmetric_info_nce_reference(z_documents.numpy(), z_topics.numpy(), 0.1, ids, ids[:, :1]),
        rtol=1e-4,
    )
    unmasked = model.compute_contrastive_loss((documents, topics), training=False)[0]
    assert unmasked.numpy() > loss.numpy()
    assert (model.topic_tower is model.encoder) == shared


def test_views_must_be_documents_and_topics():
    with pytest.raises(ValueError, match="documents, topics"):
        tiny_cdtom().compute_contrastive_loss(tf.constant(["一", "二"]), training=False)


@pytest.mark.parametrize("shared", [False, True])
def test_keras_round_trip_keeps_both_towers(tmp_path, shared):
    model = tiny_cdtom(shared, dropout=0.1, temperature=0.07)
    documents, topics, _ = batch_of()
    model.build((None,))
    model.save(tmp_path / "cdtom.keras")
    restored = keras.saving.load_model(tmp_path / "cdtom.keras")
    assert isinstance(restored, CDTOM) and restored.temperature == 0.07
    assert (restored.topic_encoder is None) == shared
    np.testing.assert_allclose(
        restored.embed_documents(documents).numpy(), model.embed_documents(documents).numpy(), atol=1e-6
    )
    np.testing.assert_allclose(restored.embed_topics(topics).numpy(), model.embed_topics(topics).numpy(), atol=1e-6)


@pytest.mark.parametrize("shared", [False, True])
def test_one_device_and_two_replicas_agree_on_loss_and_gradients(shared):
    model = tiny_cdtom(shared)
    documents, topics, ids = batch_of()
    batch = (
        {k: v.numpy() for k, v in model.encoder.tokenize(documents).items()},
        {k: v.numpy() for k, v in model.topic_tower.tokenize(topics).items()},
        ids,
    )
    keras.utils.set_random_seed(0)
    assert_distributed_equivalence(lambda: tiny_cdtom(shared), batch)


def test_fit_lowers_the_loss_and_reports_collapse_metrics():
    keras.utils.set_random_seed(0)
    model = tiny_cdtom(dropout=0.1)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    documents, topics, ids = batch_of()
    before = float(model.compute_contrastive_loss((documents, topics, ids), training=False)[0])
    tokens = (model.encoder.tokenize(documents), model.topic_tower.tokenize(topics), ids)
    history = model.fit(tf.data.Dataset.from_tensors(tokens).repeat(6), epochs=2, verbose=0).history
    after = float(model.compute_contrastive_loss((documents, topics, ids), training=False)[0])
    assert after < 0.5 * before
    for name in ("loss", "alignment", "uniformity", "embedding_std", "effective_rank"):
        assert len(history[name]) == 2 and np.all(np.isfinite(history[name])), name


def write_posts(path, posts):
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for index, (document, topics) in enumerate(posts):
            post = weibo.WeiboPost(id=str(index), text=document, document=document, topics=tuple(topics))
            writer.write(weibo.to_example(post).SerializeToString())
    return path


PAIR_POSTS = [
    ("文一", ("篮球比赛",)),
    ("文二", ("春季养生", "不在词表", "周末愉快")),  # unknown topic dropped; two pairs
    ("", ("篮球比赛",)),  # empty document: skipped
    ("文三", ("不在词表",)),  # no vocabulary topic: skipped
    ("文四", ("篮球比赛", "春季养生", "航天探索")),
]  # more than max_topics_per_post=2: spam, skipped
TINY_NGRAM_TOWER = {"text_tower": "ngram", "ngram_buckets": 512}
EXPECTED_PAIRS = [("文一", "篮球比赛", [0, -1]), ("文二", "春季养生", [1, 4]), ("文二", "周末愉快", [4, 1])]


def decoded(pairs):
    return [(d.decode(), t.decode(), list(ids)) for d, t, ids in pairs.as_numpy_iterator()]


def test_post_pairs_give_one_pair_per_vocabulary_topic(tmp_path):
    files = [write_posts(tmp_path / "posts.tfrecord.gz", PAIR_POSTS)]
    assert decoded(post_pairs(files, TOPICS, max_topics_per_post=2)) == EXPECTED_PAIRS


def test_document_pairs_of_posts_in_memory_are_those_of_the_files():
    documents, topic_lists = zip(*PAIR_POSTS)
    assert decoded(document_pairs(documents, topic_lists, TOPICS, max_topics_per_post=2)) == EXPECTED_PAIRS
    with pytest.raises(ValueError, match="2 documents but 1 topic lists"):
        document_pairs(["文一", "文二"], [["篮球比赛"]], TOPICS)


@pytest.mark.parametrize(
    ("shared", "projection_dim", "lexical_dim"), [(True, None, 0), (False, 8, 0), (True, None, 32)]
)
def test_ngram_towers_start_from_the_idf_of_the_training_texts_and_train(tmp_path, shared, projection_dim, lexical_dim):
    documents, topic_lists = zip(*(POSTS * 8))
    model, history = fit_cdtom(
        document_pairs(documents, topic_lists, TOPICS),
        None,
        TOPICS,
        tmp_path / "run",
        epochs=3,
        batch_size=8,
        learning_rate=1e-2,
        patience=None,
        verbose=0,
        **TINY_NGRAM_TOWER,
        shared_towers=shared,
        ngram_dim=16,
        projection_dim=projection_dim,
        lexical_dim=lexical_dim,
    )
    assert isinstance(model.encoder, NgramEncoder) and isinstance(model.topic_tower, NgramEncoder)
    assert (model.topic_tower is model.encoder) == shared
    texts = list(dict.fromkeys(documents)) + TOPICS
    reference = NgramEncoder(num_buckets=512, embedding_dim=16, orders=(1, 2))
    reference.adapt(texts)
    untouched = np.setdiff1d(np.arange(513), model.encoder.ngram_ids(tf.constant(texts)).flat_values.numpy())
    assert isinstance(model.optimizer, LazyAdamW)
    tables = [model.encoder.weights_per_bucket] + ([model.encoder.lexical_weights_per_bucket] if lexical_dim else [])
    for table in tables:  # buckets no text has keep their IDF weight: lazy updates never touch them
        trained, idf = table.embeddings.numpy(), reference.weights_per_bucket.embeddings.numpy()
        np.testing.assert_array_equal(trained[untouched], idf[untouched])
        assert not np.allclose(np.delete(trained, untouched), np.delete(idf, untouched))  # the others learn
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.embed_documents(tf.constant(["文一"])).shape == (1, projection_dim or 16 + lexical_dim)
    with pytest.raises(ValueError, match="text_tower must be one of"):
        build_cdtom(None, text_tower="lstm")


@pytest.mark.slow
def test_recipe_trains_on_two_replicas_and_saves(tmp_path):
    train = write_posts(tmp_path / "train.tfrecord.gz", POSTS * 4)
    evaluation = write_posts(tmp_path / "eval.tfrecord.gz", POSTS)
    vocabulary_file = tmp_path / "topic_vocab.tsv"
    vocabulary_file.write_text("".join(f"{topic}\t9\n" for topic in TOPICS), encoding="utf-8")
    tiny = dict(
        num_layers=1,
        hidden_dim=16,
        intermediate_dim=32,
        document_length=16,
        topic_length=8,
        projection_dim=8,
        vocabulary=VOCABULARY,
    )
    model, history = train_cdtom(
        [train],
        [evaluation],
        vocabulary_file,
        tmp_path / "run",
        epochs=2,
        batch_size=8,
        strategy=two_replica_strategy(),
        verbose=0,
        **tiny,
    )
    pairs = sum(len([t for t in topics if t in TOPICS]) for _, topics in POSTS * 4)
    assert model.optimizer.iterations.numpy() == 2 * (pairs // 8)
    logged = json.loads((tmp_path / "run" / "history.json").read_text())
    assert set(logged) >= {"loss", "val_loss", "effective_rank"} and len(logged["loss"]) == 2
    assert np.all(np.isfinite(logged["val_loss"]))
    assert (tmp_path / "run" / "model.keras").exists() and any((tmp_path / "run" / "logs").iterdir())
    restored = keras.saving.load_model(tmp_path / "run" / "model.keras")
    np.testing.assert_allclose(
        restored.embed_topics(tf.constant(TOPICS)).numpy(), model.embed_topics(tf.constant(TOPICS)).numpy(), atol=1e-6
    )
    with pytest.raises(ValueError, match="do not fill one batch"):
        train_cdtom([train], [], vocabulary_file, tmp_path / "small", epochs=1, batch_size=1000, **tiny)


def test_build_cdtom_shares_or_separates_towers():
    shared = build_cdtom(
        VOCABULARY, shared_towers=True, num_layers=1, hidden_dim=16, intermediate_dim=32, projection_dim=8
    )
    separate = build_cdtom(
        VOCABULARY,
        num_layers=1,
        hidden_dim=16,
        intermediate_dim=32,
        projector_hidden=(16,),
        projection_dim=8,
        topic_length=8,
    )
    assert shared.built and shared.topic_tower is shared.encoder and shared.topic_head is shared.projector
    assert separate.topic_tower.preprocessor.sequence_length == 8
    assert separate.encoder.preprocessor.sequence_length == 64
    assert separate.embed_topics(tf.constant(TOPICS)).shape == (len(TOPICS), 8)


class EpochWeights(keras.callbacks.Callback):
    """The model's weights at the end of every epoch."""

    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_recipe_keeps_the_weights_of_the_epoch_with_the_lowest_validation_loss(tmp_path):
    train = write_posts(tmp_path / "train.tfrecord.gz", POSTS * 2)
    evaluation = write_posts(tmp_path / "eval.tfrecord.gz", POSTS)
    vocabulary_file = tmp_path / "topic_vocab.tsv"
    vocabulary_file.write_text("".join(f"{topic}\t9\n" for topic in TOPICS), encoding="utf-8")
    epochs = EpochWeights()
    model, history = train_cdtom(
        [train],
        [evaluation],
        vocabulary_file,
        tmp_path / "run",
        epochs=3,
        batch_size=8,
        patience=3,
        learning_rate=1e-2,
        verbose=0,
        callbacks=[epochs],
        num_layers=1,
        hidden_dim=16,
        intermediate_dim=32,
        document_length=16,
        topic_length=8,
        projection_dim=8,
        vocabulary=VOCABULARY,
    )
    val_loss = history.history["val_loss"]
    assert len(val_loss) == 3
    for kept, best in zip(model.get_weights(), epochs.weights[int(np.argmin(val_loss))]):
        np.testing.assert_array_equal(kept, best)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """A tiny generated corpus, ingested as ``tfcl ingest weibo`` does."""
    root = tmp_path_factory.mktemp("weibo")
    weibo_sample.write_sample(root / "posts.jsonl", posts=200)
    weibo_ingest.run_ingestion([str(root / "posts.jsonl")], root / "ingested", min_topic_count=3, num_shards=1)
    return root / "ingested"


def train_command(*arguments):
    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers())
    return parser.parse_args(["train", "cdtom", *arguments])


def test_cli_needs_the_ingested_posts(tmp_path):
    args = train_command("--out", str(tmp_path))
    with pytest.raises(UserError, match="give --weibo DIR"):  # `tfcl` prints it on one line, exit code 2
        args.run(args)


@pytest.mark.slow  # two trainings of the default towers and the export: ~2 min on 2 busy cores
def test_cli_resumes_an_interrupted_run_and_exports_the_weibo_model(ingested, tmp_path, capsys):
    out = tmp_path / "run"
    files = {split: sorted(map(str, (ingested / split).glob("*.tfrecord.gz"))) for split in ("train", "eval")}
    with pytest.raises(KeyboardInterrupt):  # the run the command would make, killed after its first epoch
        train_cdtom(
            files["train"],
            files["eval"],
            ingested / weibo_ingest.TOPIC_VOCAB_FILE,
            out,
            epochs=2,
            batch_size=16,
            verbose=0,
            callbacks=[Interrupt(epoch=1)],
        )
    assert (out / "backup").exists()
    args = train_command(
        "--weibo", str(ingested), "--out", str(out), "--epochs", "2", "--batch-size", "16", "--topic-index", "centroid"
    )
    args.run(args)
    assert f"saved {out}/model.keras and the SavedModel {out}/weibo_model" in capsys.readouterr().out
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 1, "only the second epoch remains"
    assert not (out / "backup").exists() and (out / "model.keras").exists()
    served = tf.saved_model.load(str(out / "weibo_model"))
    topics = {line.split("\t")[0] for line in (ingested / weibo_ingest.TOPIC_VOCAB_FILE).read_text().splitlines()}
    answer = served.signatures["predict_topics"](texts=tf.constant(["复工 工厂 通勤"]))
    assert {topic.decode() for topic in answer["topics"].numpy()[0]} <= topics


def test_span_pairs_add_a_span_of_the_post_that_none_of_its_pairs_counts_as_a_negative():
    documents, topic_lists = zip(*PAIR_POSTS)
    pairs = decoded(document_pairs(documents, topic_lists, TOPICS, max_topics_per_post=2, span_rate=1.0, seed=1))
    topic_pairs_only = [(d, t, ids[:1]) for d, t, ids in pairs if ids[0] < len(TOPICS)]
    assert topic_pairs_only == [(d, t, ids[:1]) for d, t, ids in EXPECTED_PAIRS]
    spans = [(d, t, ids) for d, t, ids in pairs if ids[0] >= len(TOPICS)]
    assert [d for d, _, _ in spans] == ["文一", "文二"]  # one per kept post
    assert all(len(row_ids) == 3 for _, _, row_ids in pairs)  # max_topics_per_post + the span
    for document, span, ids in spans:
        assert span and span in document and len(span) <= 2
        for row_document, _, row_ids in pairs:
            assert (ids[0] in row_ids) == (row_document == document)
    assert len(pairs) == len(EXPECTED_PAIRS) + 2


def test_span_pairs_are_drawn_at_their_rate_and_checked():
    documents = [f"{i:03d}一二三四五六七八九十" for i in range(400)]
    pairs = decoded(document_pairs(documents, [["篮球比赛"]] * 400, TOPICS, span_rate=0.25, seed=0))
    spans = [(d, t) for d, t, ids in pairs if ids[0] >= len(TOPICS)]
    assert 60 <= len(spans) <= 140 and all(2 <= len(span) <= 8 for _, span in spans)
    # spans of every length, and not only at the start of the post
    assert {len(span) for _, span in spans} == set(range(2, 9))
    assert max(document.index(span) for document, span in spans) >= 8
    with pytest.raises(ValueError, match="span_rate"):
        document_pairs(documents, [["篮球比赛"]] * 400, TOPICS, span_rate=1.5)
    with pytest.raises(ValueError, match="span_lengths"):
        document_pairs(documents, [["篮球比赛"]] * 400, TOPICS, span_rate=0.5, span_lengths=(3, 2))


def tiny_ngram_cdtom(dim=16):
    model = build_cdtom(None, **TINY_NGRAM_TOWER, shared_towers=True, ngram_dim=dim, projection_dim=None)
    model.encoder.adapt([document for document, _ in POSTS] + TOPICS)
    return model


def test_grouped_batches_hold_pairs_of_one_group_of_topics():
    documents, topic_lists = zip(*(POSTS * 8))
    pairs = document_pairs(documents, topic_lists, TOPICS, span_rate=0.3, seed=0)
    groups = [0, 0, 1, 1, 0, 1]
    batches = pair_batches(pairs, tiny_ngram_cdtom(), 4, shuffle_seed=0, topic_groups=groups)
    seen = set()
    for _, _, topic_ids in batches.take(40):
        pair_topics = topic_ids[:, 0].numpy()
        batch_groups = {groups[topic] if topic < len(TOPICS) else "span" for topic in pair_topics}
        assert len(batch_groups) == 1, pair_topics
        seen |= batch_groups
    assert seen == {0, 1, "span"}


def test_similar_topics_share_a_group_and_grouped_training_runs(tmp_path):
    posts = [("篮球投篮扣篮", ["篮球比赛"]), ("篮球扣篮三分", ["春季养生"])] * 4 + [
        ("火箭卫星轨道", ["航天探索"]),
        ("卫星轨道火箭", ["萌宠日常"]),
    ] * 4
    documents, topic_lists = zip(*posts)
    pair_topics = [TOPICS.index(topics[0]) for topics in topic_lists]
    groups = similar_topic_groups(tiny_ngram_cdtom(dim=256), documents, pair_topics, len(TOPICS), 2)
    assert groups.shape == (len(TOPICS),) and groups[0] == groups[1] and groups[2] == groups[3] != groups[0]
    model, history = fit_cdtom(
        document_pairs(documents, topic_lists, TOPICS),
        None,
        TOPICS,
        tmp_path / "run",
        epochs=1,
        batch_size=4,
        patience=None,
        verbose=0,
        **TINY_NGRAM_TOWER,
        shared_towers=True,
        ngram_dim=16,
        projection_dim=None,
        hard_negative_groups=2,
    )
    assert np.isfinite(history.history["loss"][-1])
