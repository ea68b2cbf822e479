"""The Beam ingestion job: counts add up, dead letters keep their reasons, the split is stable, TFRecords read back."""

import argparse
import collections
import json
from pathlib import Path

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter

from tfcl import cli
from tfcl.cli import ingest
from tfcl.data import weibo, weibo_ingest, weibo_sample

FIXTURES = Path(__file__).parents[1] / "fixtures" / "weibo"


def _written_posts(out_dir, split):
    return [weibo.from_example(features) for features in weibo.load_split(out_dir, split)]


def _expected_by_reading(path, **options):
    """What the pure-Python reader makes of ``path``: de-duplicated posts by id (longest text kept), dead letters."""
    dead_letters, kept = [], {}
    for post in weibo.read_posts(path, dead_letters=dead_letters, **options):
        if post.id not in kept or len(post.text) > len(kept[post.id].text):
            kept[post.id] = post
    return kept, collections.Counter(letter.reason for letter in dead_letters)


@pytest.fixture(scope="module")
def statuses_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("statuses")
    counts = weibo_ingest.run_ingestion(
        [str(FIXTURES / "statuses.jsonl")], out_dir, max_chars=500, eval_fraction=0.5, num_shards=2, min_topic_count=2
    )
    return out_dir, counts


def test_counts_add_up_and_match_the_fixture(statuses_run):
    out_dir, counts = statuses_run
    kept, reasons = _expected_by_reading(FIXTURES / "statuses.jsonl", max_chars=500)
    assert counts["read"] == counts["written"] + counts["dead_lettered"] + counts["duplicates"]
    assert counts["read"] == len((FIXTURES / "statuses.jsonl").read_bytes().splitlines())
    assert counts["written"] == counts["train"] + counts["eval"] == len(kept)
    assert counts["duplicates"] == 2
    assert counts["dead_letter_reasons"] == {reason: reasons[reason] for reason in weibo.REASONS}
    assert json.loads((out_dir / weibo_ingest.COUNTS_FILE).read_text()) == counts


def test_dead_letters_file_has_every_malformed_record_with_its_reason(statuses_run):
    out_dir, counts = statuses_run
    letters = [json.loads(line) for line in (out_dir / weibo_ingest.DEAD_LETTERS_FILE).read_text().splitlines()]
    assert len(letters) == counts["dead_lettered"]
    assert collections.Counter(letter["reason"] for letter in letters) == {
        reason: n for reason, n in counts["dead_letter_reasons"].items() if n
    }
    assert all(letter["source"].endswith("statuses.jsonl") and letter["detail"] for letter in letters)
    assert any("\\x" in letter["raw"] for letter in letters if letter["reason"] == "bad_encoding")


def test_tfrecords_parse_back_into_the_deduplicated_posts(statuses_run):
    out_dir, _ = statuses_run
    kept, _ = _expected_by_reading(FIXTURES / "statuses.jsonl", max_chars=500)
    written = {post.id: post for split in weibo_ingest.SPLITS for post in _written_posts(out_dir, split)}
    assert written == kept  # every field, the long text of the repeated long post included
    for split in weibo_ingest.SPLITS:
        assert len(list((out_dir / split).glob("part-*-of-00002.tfrecord.gz"))) == 2
        index = weibo_ingest.SPLITS.index(split)
        assert all(weibo_ingest.split_of(post.id, 0.5) == index for post in _written_posts(out_dir, split))


def test_topic_tables_count_posts_per_split_and_apply_the_minimum(statuses_run):
    out_dir, _ = statuses_run
    expected = collections.Counter()
    for split in weibo_ingest.SPLITS:
        for post in _written_posts(out_dir, split):
            expected.update((topic, split) for topic in post.topics)
    rows = [line.split("\t") for line in (out_dir / weibo_ingest.TOPIC_COUNTS_FILE).read_text().splitlines()]
    assert {topic: (int(train), int(eval_)) for topic, train, eval_ in rows} == {
        topic: (expected[topic, "train"], expected[topic, "eval"]) for topic, _ in expected
    }
    vocab = weibo.read_topic_counts(out_dir / weibo_ingest.TOPIC_VOCAB_FILE)
    assert vocab == [(topic, int(train)) for topic, train, _ in rows if int(train) >= 2]


def test_topic_tables_sort_by_count_then_name():
    counts, vocab = weibo_ingest.topic_tables([("b", (1, 0)), ("a", (3, 1)), ("c", (1, 2)), ("d", (0, 4))], 1)
    assert counts == "a\t3\t1\nc\t1\t2\nb\t1\t0\nd\t0\t4\n"
    assert vocab == "a\t3\nc\t1\nb\t1\n"


def test_split_is_a_stable_hash_of_the_id():
    ids = [str(4480000000000000 + i) for i in range(4000)]
    first = [weibo_ingest.split_of(post_id, 0.2) for post_id in ids]
    assert first == [weibo_ingest.split_of(post_id, 0.2) for post_id in ids]
    assert 0.17 < sum(first) / len(ids) < 0.23
    assert not any(weibo_ingest.split_of(post_id, 0.0) for post_id in ids)


def test_keep_one_does_not_depend_on_order_and_accounts_for_every_dropped_record():
    short = ("a.jsonl:1", weibo.WeiboPost(id="1", text="#话题# 短", document="短", topics=("话题",)))
    long_ = ("a.jsonl:2", weibo.WeiboPost(id="1", text="#话题# 长一些", document="长一些", topics=("话题",)))
    other = ("b.jsonl:7", weibo.WeiboPost(id="1", text="#话题# 长一点", document="长一点", topics=("话题",)))
    outcomes = {
        (kept, tuple(dropped))
        for kept, dropped in map(weibo_ingest.keep_one, ([short, long_, other], [other, short, long_]))
    }
    assert len(outcomes) == 1
    kept, dropped = outcomes.pop()
    assert kept == long_[1]  # the longest text; between the two of equal length, the smaller JSON form
    assert sorted((duplicate.source, duplicate.post) for duplicate in dropped) == sorted([short, other])
    assert all(duplicate.kept_id == "1" and duplicate.kept_source == "a.jsonl:2" for duplicate in dropped)


def test_ingest_transform_inside_another_pipeline_reports_beam_counters():
    records = [
        ("memory", json.dumps({"idstr": str(i), "text": f"#话题{i % 3}# 正文{i}"}, ensure_ascii=False).encode())
        for i in range(20)
    ]
    records += [("memory", records[0][1]), ("memory", b"{not json"), ("memory", b'{"idstr": "99", "text": ""}')]
    pipeline = beam.Pipeline()
    outputs = pipeline | beam.Create(records) | weibo_ingest.IngestWeibo(weibo.RecordParser("jsonl"), 0.25)
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_namespace(weibo_ingest.NAMESPACE))
    counters = {metric.key.metric.name: metric.committed for metric in query["counters"]}
    assert counters["read"] == 23 and counters["duplicates"] == 1
    assert counters["dead_letter_bad_json"] == 1 and counters["dead_letter_no_text"] == 1
    assert counters["written_train"] + counters["written_eval"] == 20
    assert counters["written_eval"] == sum(weibo_ingest.split_of(str(i), 0.25) for i in range(20))
    assert set(outputs) == {"train", "eval", "dead_letters", "duplicates", "tallies"}


@pytest.fixture(scope="module")
def sample_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "sample.jsonl"
    return path, weibo_sample.write_sample(path, posts=300, seed=7)


def test_sample_corpus_counts_match_its_manifest_and_the_split_is_stable_across_runs(sample_corpus, tmp_path):
    path, manifest = sample_corpus
    first = weibo_ingest.run_ingestion([str(path)], tmp_path / "a", num_shards=1)
    second = weibo_ingest.run_ingestion(
        [str(path)], tmp_path / "b", num_shards=3, pipeline_args=["--runner=FnApiRunner"]
    )
    assert first == second
    assert first["read"] == manifest["lines"] and first["written"] == manifest["posts"]
    assert first["duplicates"] == manifest["duplicates"]
    assert first["dead_letter_reasons"] == {reason: manifest["malformed"].get(reason, 0) for reason in weibo.REASONS}
    for split in weibo_ingest.SPLITS:
        assert {post.id for post in _written_posts(tmp_path / "a", split)} == {
            post.id for post in _written_posts(tmp_path / "b", split)
        }


def test_cli_writes_the_sample_and_ingests_a_csv_export(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    ingest.register(parser.add_subparsers())
    args = parser.parse_args(["ingest", "sample", "--out", str(tmp_path / "s.jsonl"), "--posts", "50"])
    args.run(args)
    assert json.loads(capsys.readouterr().out)["posts"] == 50
    assert (tmp_path / "s.jsonl").read_bytes() == b"".join(
        line + b"\n" for line in weibo_sample.sample_lines(50, seed=0)[0]
    )

    args = parser.parse_args(
        [
            "ingest",
            "weibo",
            "in.jsonl",
            "--out",
            "out",
            "--mentions",
            "drop",
            "--lost-emoji-mark",
            "",
            "--keep-card-residue",
        ]
    )
    assert ingest.normalization(args) == weibo.Normalization(
        mentions="drop", lost_emoji_mark=None, strip_card_residue=False
    )

    args = parser.parse_args(
        [
            "ingest",
            "weibo",
            str(FIXTURES / "export.csv"),
            "--out",
            str(tmp_path / "csv"),
            "--num-shards",
            "1",
            "--pipeline-arg=--direct_num_workers=1",
        ]
    )
    assert ingest.pipeline_args(args) == ["--runner=DirectRunner", "--direct_num_workers=1"]
    args.run(args)
    counts = json.loads(capsys.readouterr().out)
    assert counts["read"] == 6 and counts["written"] == 3 and counts["duplicates"] == 1
    assert counts["dead_letter_reasons"]["no_id"] == 1 and counts["dead_letter_reasons"]["bad_csv_row"] == 1
    written = {post.id: post for split in weibo_ingest.SPLITS for post in _written_posts(tmp_path / "csv", split)}
    assert written["4483090981820002"].text == '#天气预报#\n明天降温，"记得"带伞, 多穿点'


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(weibo.InputError, match="no input file matches"):
        weibo_ingest.expand_inputs([str(tmp_path / "missing-*.jsonl")])
    with pytest.raises(ValueError, match="mix formats"):
        weibo_ingest.input_format([str(FIXTURES / "statuses.jsonl"), str(FIXTURES / "export.csv")])
    with pytest.raises(ValueError, match="different headers"):
        weibo_ingest.record_parser([str(FIXTURES / "export.csv"), str(FIXTURES / "user_text.csv")], "csv")
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("1,#话题# 正文\n", encoding="utf-8")
    with pytest.raises(ValueError, match="headerless.csv: unusable CSV header.*no text column"):
        weibo_ingest.record_parser([str(headerless)], "csv")
    with pytest.raises(weibo.InputError, match="unknown encoding 'utf-9'"):
        weibo_ingest.record_parser([str(FIXTURES / "statuses.jsonl")], "jsonl", "utf-9")
    with pytest.raises(ValueError, match="eval_fraction"):
        weibo_ingest.IngestWeibo(weibo.RecordParser("jsonl"), eval_fraction=1.0)


def test_feature_spec_parses_a_serialised_post():
    post = weibo.WeiboPost(
        id="1",
        text="#话题# 正文",
        document="正文",
        topics=("话题", "另一个"),
        pictures=("emoji:1f600",),
        created_at="2020-03-18T10:20:30+08:00",
    )
    features = tf.io.parse_single_example(weibo.to_example(post).SerializeToString(), weibo.feature_spec())
    assert weibo.from_example(features) == post


@pytest.mark.slow
def test_multi_processing_gives_the_same_output(sample_corpus, tmp_path):
    path, _ = sample_corpus
    parser = argparse.ArgumentParser()
    ingest.register(parser.add_subparsers())
    outputs = {}
    for workers in (1, 2):
        args = parser.parse_args(
            [
                "ingest",
                "weibo",
                str(path),
                "--out",
                str(tmp_path / str(workers)),
                "--num-shards",
                "1",
                "--direct-num-workers",
                str(workers),
            ]
        )
        outputs[workers] = weibo_ingest.run_ingestion(
            args.inputs, args.out, num_shards=args.num_shards, pipeline_args=ingest.pipeline_args(args)
        )
    assert "--direct_running_mode=multi_processing" in ingest.pipeline_args(args)
    assert outputs[1] == outputs[2]
    for split in weibo_ingest.SPLITS:
        assert sorted(_written_posts(tmp_path / "1", split), key=lambda post: post.id) == sorted(
            _written_posts(tmp_path / "2", split), key=lambda post: post.id
        )


def _cli(capsys, *argv):
    """``tfcl ...`` in this process: (exit status, stdout less the line naming the log, stderr lines)."""
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    out = "".join(line for line in captured.out.splitlines(keepends=True) if not line.startswith("log: "))
    return status, out, captured.err.strip().splitlines()


def test_duplicates_are_written_with_the_kept_records_id_and_source(statuses_run):
    out_dir, counts = statuses_run
    duplicates = [json.loads(line) for line in (out_dir / weibo_ingest.DUPLICATES_FILE).read_text().splitlines()]
    assert len(duplicates) == counts["duplicates"] == 2
    written = {post.id: post for split in weibo_ingest.SPLITS for post in _written_posts(out_dir, split)}
    for duplicate in duplicates:
        kept = written[duplicate["kept_id"]]
        assert duplicate["post"]["id"] == kept.id
        assert (
            duplicate["source"] == duplicate["kept_source"] == str(FIXTURES / "statuses.jsonl")
        )  # JSON lines: no line
        assert len(duplicate["post"]["text"]) <= len(kept.text)


def test_reingesting_into_the_same_out_replaces_the_previous_run_as_a_whole(sample_corpus, tmp_path):
    path, _ = sample_corpus
    out_dir = tmp_path / "out"
    weibo_ingest.run_ingestion([str(path)], out_dir, num_shards=4)
    (out_dir / "train" / "stale-note.txt").write_text("left by hand")
    counts = weibo_ingest.run_ingestion([str(FIXTURES / "statuses.jsonl")], out_dir, num_shards=2, max_chars=500)
    for split in weibo_ingest.SPLITS:
        assert sorted(file.name for file in (out_dir / split).iterdir()) == [
            f"part-0000{shard}-of-00002.tfrecord.gz" for shard in range(2)
        ]
        assert len(_written_posts(out_dir, split)) == counts[split]
    assert json.loads((out_dir / weibo_ingest.COUNTS_FILE).read_text()) == counts
    assert [entry.name for entry in tmp_path.iterdir()] == ["out"]  # no run folder left behind


def test_an_out_folder_that_is_not_an_ingestion_output_is_refused_and_kept(tmp_path, capsys):
    out_dir = tmp_path / "mine"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("precious")
    status, _, errors = _cli(capsys, "ingest", "weibo", str(FIXTURES / "statuses.jsonl"), "--out", str(out_dir))
    assert status == 2 and len(errors) == 1 and "holds files of something else" in errors[0]
    assert [entry.name for entry in out_dir.iterdir()] == ["notes.txt"]


def test_nothing_written_fails_with_one_line_and_an_encoding_hint(tmp_path, capsys):
    path = tmp_path / "gb.csv"
    path.write_bytes("id,text\n1,#话题# 第一条\n2,#话题# 第二条\n3,#话题# 第三条\n".encode("gb18030"))
    status, out, errors = _cli(capsys, "ingest", "weibo", str(path), "--out", str(tmp_path / "out"))
    assert status == 1 and len(errors) == 1
    assert "wrote 0 posts" in errors[0] and "bad_encoding 3" in errors[0] and "try --encoding gb18030" in errors[0]
    assert json.loads(out)["dead_lettered"] == 3
    assert len((tmp_path / "out" / weibo_ingest.DEAD_LETTERS_FILE).read_text().splitlines()) == 3  # kept, not lost
    status, out, errors = _cli(
        capsys, "ingest", "weibo", str(path), "--out", str(tmp_path / "out"), "--encoding", "gb18030"
    )
    assert status == 0 and json.loads(out)["written"] == 3 and not errors


def test_min_written_sets_the_bar(tmp_path, capsys):
    out = str(tmp_path / "out")
    status, _, errors = _cli(
        capsys, "ingest", "weibo", str(FIXTURES / "export.csv"), "--out", out, "--min-written", "4"
    )
    assert status == 1 and len(errors) == 1 and "wrote 3 posts, fewer than --min-written 4" in errors[0]
    assert "--encoding" not in errors[0]


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda folder: folder / "missing.csv", "no input file matches"),
        (lambda folder: folder / "empty.csv", "the inputs are empty"),
        (lambda folder: folder / "header_only.csv", "wrote 0 posts"),
        (lambda folder: folder / "no_data_files", "no input file matches"),
    ],
)
def test_missing_and_empty_inputs_are_one_line_errors(tmp_path, capsys, make_input, message):
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header_only.csv").write_text("id,text\n")
    (tmp_path / "no_data_files").mkdir()
    (tmp_path / "no_data_files" / "README.md").write_text("notes")
    status, _, errors = _cli(capsys, "ingest", "weibo", str(make_input(tmp_path)), "--out", str(tmp_path / "out"))
    assert status == (1 if "wrote" in message else 2)
    assert len(errors) == 1 and message in errors[0]


def test_a_folder_is_read_as_its_data_files(tmp_path, capsys):
    folder = tmp_path / "exports"
    folder.mkdir()
    for name in ("export.csv", "user_text.csv"):
        (folder / name).write_bytes((FIXTURES / "export.csv").read_bytes())
    (folder / "README.md").write_text("not data")
    (folder / "empty.csv").write_bytes(b"")
    status, out, _ = _cli(capsys, "ingest", "weibo", str(folder), "--out", str(tmp_path / "out"), "--num-shards", "1")
    counts = json.loads(out)
    assert status == 0 and counts["read"] == 12 and counts["written"] == 3 and counts["duplicates"] == 5
