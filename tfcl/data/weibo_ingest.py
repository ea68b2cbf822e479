"""Apache Beam job: Weibo records → de-duplicated, train/eval-split TFRecords, a topic vocabulary, dead letters, counts.

::

    raw records ─ ParseWeibo ─┬─ posts ─ de-duplicate by id ─ split by hash(id) ─┬─ train/part-*.tfrecord.gz
                              │                                                   ├─ eval/part-*.tfrecord.gz
                              │                                                   └─ topic_counts.tsv, topic_vocab.tsv
                              └─ dead letters (reason) ──────────────────────────── dead_letters.jsonl
    every branch's tallies ─────────────────────────────────────────────────────── counts.json

``counts.json`` satisfies ``read = train + eval + dead_lettered + duplicates`` (checked after the run); the same
numbers are Beam Metrics counters in the namespace ``weibo``. ``read`` counts records: JSON lines, or CSV records
after each file's header row. A dead letter names its file (and line, for CSV: JSON lines are read in splits that
do not know their line numbers). Of records sharing an id the one with the longest text is kept (ties: the smallest
JSON form), so the output does not depend on the order the runner sees them in.

:class:`ParseWeibo` (raw records → tagged outputs) and :class:`IngestWeibo` (raw records → split posts, dead
letters, tallies) are reusable inside other pipelines, e.g. a TFX ExampleGen; :func:`run_ingestion` is the driver.
"""

import hashlib
import json
import logging
import os

import apache_beam as beam
import tensorflow as tf
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from tfcl.data import weibo

logger = logging.getLogger(__name__)
NAMESPACE = "weibo"
POSTS, DEAD_LETTERS = "posts", "dead_letters"
SPLITS = ("train", "eval")
COUNTS_FILE, DEAD_LETTERS_FILE = "counts.json", "dead_letters.jsonl"
TOPIC_COUNTS_FILE, TOPIC_VOCAB_FILE = "topic_counts.tsv", "topic_vocab.tsv"
RUNNERS = ("DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner")


def pipeline_options(
    runner: str = "DirectRunner", direct_num_workers: int = 1, extra: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """Beam pipeline arguments: ``--runner`` and the ``extra`` ones passed through (``--project=...``...).

    On the DirectRunner, ``direct_num_workers`` above 1 (0: one per core) runs that many worker processes: Beam's
    FnApiRunner engine in ``multi_processing`` mode (Beam 2.74's DirectRunner would first try its Prism runner,
    which does not take that option). Other runners size their workers through their own ``extra`` options.
    """
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; choose one of {RUNNERS}")
    if direct_num_workers < 0:
        raise ValueError(f"direct_num_workers must be 0 (one per core) or more, got {direct_num_workers}")
    if direct_num_workers == 1:
        return [f"--runner={runner}", *extra]
    if runner != "DirectRunner":
        raise ValueError(f"direct_num_workers is a DirectRunner option; the runner is {runner}")
    return [
        "--runner=FnApiRunner",
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={direct_num_workers}",
        *extra,
    ]


def split_of(post_id, eval_fraction):
    """0 (train) or 1 (eval), from a hash of the id: the same post lands in the same split on every run."""
    bucket = int.from_bytes(hashlib.sha256(post_id.encode("utf-8")).digest()[:8], "big") / 2**64
    return int(bucket < eval_fraction)


class ParseWeibo(beam.PTransform):
    """``(source, raw bytes)`` records → tagged outputs ``posts`` (WeiboPost) and ``dead_letters`` (DeadLetter)."""

    def __init__(self, parser):
        super().__init__()
        self.parser = parser

    def expand(self, records):
        return records | beam.ParDo(_ParseFn(self.parser)).with_outputs(DEAD_LETTERS, main=POSTS)


class _ParseFn(beam.DoFn):
    def __init__(self, parser):
        self.parser = parser
        self.read = Metrics.counter(NAMESPACE, "read")
        self.dead_lettered = {reason: Metrics.counter(NAMESPACE, f"dead_letter_{reason}") for reason in weibo.REASONS}

    def process(self, record):
        self.read.inc()
        result = self.parser.parse_or_dead_letter(*record)
        if isinstance(result, weibo.WeiboPost):
            yield result
        else:
            self.dead_lettered[result.reason].inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, result)


class KeepOnePost(beam.CombineFn):
    """Of the posts sharing an id: ``(the kept post, how many there were)``."""

    def create_accumulator(self):
        return None, 0

    def add_input(self, accumulator, post):
        return self.merge_accumulators([accumulator, (post, 1)])

    def merge_accumulators(self, accumulators):
        posts = [post for post, _ in accumulators if post is not None]
        kept = min(posts, key=lambda post: (-len(post.text), post.to_json()), default=None)
        return kept, sum(count for _, count in accumulators)

    def extract_output(self, accumulator):
        return accumulator


class IngestWeibo(beam.PTransform):
    """``(source, raw bytes)`` records → ``{"train", "eval"}`` posts, ``"dead_letters"`` and ``"tallies"``.

    ``tallies`` holds ``(name, n)`` pairs; :func:`counts_report` turns their sums into the counts file.
    """

    def __init__(self, parser, eval_fraction=0.1):
        super().__init__()
        if not 0 <= eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
        self.parser = parser
        self.eval_fraction = eval_fraction

    def expand(self, records):
        parsed = records | "Parse" >> ParseWeibo(self.parser)
        kept_with_counts = (
            parsed[POSTS]
            | "KeyById" >> beam.Map(lambda post: (post.id, post))
            | "DeduplicateById" >> beam.CombinePerKey(KeepOnePost())
            | beam.Values()
        )
        train, eval_ = (
            kept_with_counts
            | "Kept" >> beam.Map(lambda kept_and_count: kept_and_count[0])
            | "SplitByIdHash" >> beam.Partition(_partition, len(SPLITS), self.eval_fraction)
        )
        tallies = (
            records | "TallyRead" >> beam.Map(lambda _: ("read", 1)),
            parsed[DEAD_LETTERS] | "TallyDeadLetters" >> beam.Map(lambda letter: (f"dead_letter/{letter.reason}", 1)),
            kept_with_counts | "TallyDuplicates" >> beam.Map(_tally_duplicates),
            train | "TallyTrain" >> beam.Map(lambda _: ("train", 1)),
            eval_ | "TallyEval" >> beam.Map(lambda _: ("eval", 1)),
        ) | "AllTallies" >> beam.Flatten()
        return {"train": train, "eval": eval_, DEAD_LETTERS: parsed[DEAD_LETTERS], "tallies": tallies}


def _partition(post, num_partitions, eval_fraction):
    split = split_of(post.id, eval_fraction)
    Metrics.counter(NAMESPACE, f"written_{SPLITS[split]}").inc()
    return split


def _tally_duplicates(kept_and_count):
    duplicates = kept_and_count[1] - 1
    Metrics.counter(NAMESPACE, "duplicates").inc(duplicates)
    return "duplicates", duplicates


def counts_report(tally):
    """The counts file from the summed tallies: every reason listed, zero or not."""
    reasons = {reason: tally.get(f"dead_letter/{reason}", 0) for reason in weibo.REASONS}
    return {
        "read": tally.get("read", 0),
        "written": tally.get("train", 0) + tally.get("eval", 0),
        "train": tally.get("train", 0),
        "eval": tally.get("eval", 0),
        "dead_lettered": sum(reasons.values()),
        "duplicates": tally.get("duplicates", 0),
        "dead_letter_reasons": reasons,
    }


def topic_tables(rows, min_count):
    """``(topic_counts.tsv, topic_vocab.tsv)`` text from ``[(topic, (train, eval)), ...]``.

    The counts table lists every topic with its train and eval post counts; the vocabulary keeps the topics with at
    least ``min_count`` train posts (counted on train only, so held-out posts do not shape it), most frequent first.
    """
    rows = sorted(rows, key=lambda row: (-row[1][0], -row[1][1], row[0]))
    counts = "".join(f"{topic}\t{train}\t{eval_}\n" for topic, (train, eval_) in rows)
    vocab = "".join(f"{topic}\t{train}\n" for topic, (train, _) in rows if train >= min_count)
    return counts, vocab


class ReadWeiboRecords(beam.PTransform):
    """File paths → ``(source, raw bytes)`` records: JSON lines split across workers, CSV files read whole
    (a quoted field may span lines)."""

    def __init__(self, paths, fmt):
        super().__init__()
        self.paths = list(paths)
        self.fmt = fmt

    def expand(self, pbegin):
        paths = pbegin | "Paths" >> beam.Create(self.paths)
        if self.fmt == "jsonl":
            return paths | beam.io.ReadAllFromText(coder=beam.coders.BytesCoder(), with_filename=True)
        return paths | fileio.MatchAll() | fileio.ReadMatches() | beam.FlatMap(_csv_file_records)


def _csv_file_records(readable_file):
    with readable_file.open() as file:
        _, records = weibo.open_records(file, "csv", source=readable_file.metadata.path)
        yield from records


def input_format(paths, fmt=None):
    """The one format of all ``paths`` (given, or detected from each file); CSV inputs must share a header."""
    formats = {fmt or weibo.detect_format(path, _head(path)) for path in paths}
    if len(formats) > 1:
        raise ValueError(f"inputs mix formats {sorted(formats)}: ingest JSON lines and CSV in separate runs")
    return formats.pop()


def record_parser(paths, fmt, encoding="utf-8", **options):
    """The parser for ``paths``: for CSV, built from the header row, which every file must share."""
    if fmt == "jsonl":
        return weibo.RecordParser("jsonl", encoding=encoding, **options)
    parsers = {}
    for path in paths:
        with FileSystems.open(path) as file:
            parsers[path] = weibo.open_records(file, "csv", encoding, source=path)[0]
    headers = {parser.csv_columns for parser in parsers.values()}
    if len(headers) > 1:
        raise ValueError(f"CSV inputs have different headers: { {p: list(v.csv_columns) for p, v in parsers.items()} }")
    return weibo.RecordParser("csv", headers.pop(), encoding=encoding, **options)


def expand_inputs(inputs):
    """Every file matching the input paths or glob patterns; a pattern matching nothing is an error."""
    paths = []
    for pattern in inputs:
        matched = [metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list]
        if not matched:
            raise FileNotFoundError(f"no input file matches {pattern!r}")
        paths += sorted(matched)
    return paths


def run_ingestion(
    inputs,
    out_dir,
    *,
    fmt=None,
    encoding="utf-8",
    min_topic_count=5,
    eval_fraction=0.1,
    num_shards=4,
    max_chars=weibo.MAX_CHARS,
    normalization=weibo.Normalization(),
    pipeline_args=(),
):
    """Ingest ``inputs`` (paths or globs of JSON-lines or CSV files) into ``out_dir``; returns the counts.

    ``pipeline_args`` are Beam's (``--runner``, ``--direct_num_workers``...); the default runner is DirectRunner.
    Raises ``RuntimeError`` if the counts do not add up.
    """
    paths = expand_inputs(inputs)
    fmt = input_format(paths, fmt)
    parser = record_parser(paths, fmt, encoding, max_chars=max_chars, normalization=normalization)
    if parser.derives_ids:
        logger.info(
            "%s has no id column: ids are derived from user and text (%s...)", paths[0], weibo.DERIVED_ID_PREFIX
        )
    out_dir = str(out_dir)
    options = PipelineOptions(list(pipeline_args))
    with beam.Pipeline(options=options) as pipeline:
        outputs = pipeline | "Read" >> ReadWeiboRecords(paths, fmt) | "Ingest" >> IngestWeibo(parser, eval_fraction)
        for split in SPLITS:
            (
                outputs[split]
                | f"ToExample/{split}" >> beam.Map(weibo.to_example)
                | f"Write/{split}"
                >> beam.io.WriteToTFRecord(
                    os.path.join(out_dir, split, "part"),
                    coder=beam.coders.ProtoCoder(tf.train.Example),
                    file_name_suffix=".tfrecord.gz",
                    num_shards=num_shards,
                )
            )
        (
            outputs[DEAD_LETTERS]
            | "DeadLetterJson" >> beam.Map(weibo.DeadLetter.to_json)
            | "WriteDeadLetters" >> _WriteSingle(out_dir, DEAD_LETTERS_FILE)
        )
        (
            outputs["tallies"]
            | "SumTallies" >> beam.CombinePerKey(sum)
            | "TallyDict" >> beam.combiners.ToDict()
            | "Report" >> beam.Map(lambda tally: json.dumps(counts_report(tally), indent=2, sort_keys=True))
            | "WriteCounts" >> _WriteSingle(out_dir, COUNTS_FILE)
        )
        tables = (
            [outputs[split] | f"Topics/{split}" >> beam.FlatMap(_topic_events, split) for split in SPLITS]
            | "AllTopics" >> beam.Flatten()
            | "CountTopics" >> beam.CombinePerKey(beam.combiners.TupleCombineFn(sum, sum))
            | "TopicRows" >> beam.combiners.ToList()
            | "TopicTables" >> beam.Map(topic_tables, min_topic_count)
        )
        for index, name in enumerate((TOPIC_COUNTS_FILE, TOPIC_VOCAB_FILE)):
            (
                tables
                | f"Table/{name}" >> beam.Map(lambda both, i=index: both[i])
                | f"Write/{name}" >> _WriteSingle(out_dir, name, lines=False)
            )
    with FileSystems.open(os.path.join(out_dir, COUNTS_FILE)) as file:
        counts = json.loads(file.read())
    accounted = counts["written"] + counts["dead_lettered"] + counts["duplicates"]
    if counts["read"] != accounted:
        raise RuntimeError(f"counts do not add up: read {counts['read']} != {accounted} accounted for ({counts})")
    return counts


class _WriteSingle(beam.PTransform):
    """Write a PCollection of strings to one file ``out_dir/name`` (one line each, or as they are)."""

    def __init__(self, out_dir, name, lines=True):
        super().__init__()
        self.path = os.path.join(out_dir, name)
        self.lines = lines

    def expand(self, texts):
        return texts | beam.io.WriteToText(
            self.path, num_shards=1, shard_name_template="", append_trailing_newlines=self.lines
        )


def _head(path, size=64):
    with FileSystems.open(path) as file:
        return file.read(size)


def _topic_events(post, split):
    return [(topic, (int(split == "train"), int(split == "eval"))) for topic in post.topics]
