"""Apache Beam job: Weibo records → de-duplicated, train/eval-split TFRecords, a topic vocabulary, dead letters, counts.

::

    raw records ─ ParseWeibo ─┬─ posts ─ de-duplicate by id ─┬─ split by hash(id) ─┬─ train/part-*.tfrecord.gz
                              │                               │                     ├─ eval/part-*.tfrecord.gz
                              │                               │                     └─ topic_counts.tsv, topic_vocab.tsv
                              │                               └─ dropped (kept id) ──── duplicates.jsonl
                              └─ dead letters (reason) ──────────────────────────────── dead_letters.jsonl
    every branch's tallies ─────────────────────────────────────────────────────────── counts.json

``counts.json`` satisfies ``read = train + eval + dead_lettered + duplicates`` (checked after the run); the same
numbers are Beam Metrics counters in the namespace ``weibo``. ``read`` counts records: JSON lines, or CSV records
after each file's header row. A dead letter names its file (and line, for CSV: JSON lines are read in splits that
do not know their line numbers). Of records sharing an id the one with the longest text is kept (ties: the smallest
JSON form, then the source), so the output does not depend on the order the runner sees them in; each other one is
written to ``duplicates.jsonl`` with its source and the kept record's id and source.

:func:`build_ingestion` adds the whole job to a Beam pipeline, writing where it is told: the CLI's
:func:`run_ingestion` and the TFX ExampleGen executor both use it. :func:`run_ingestion` writes a fresh run folder
next to ``out_dir`` and, once its counts add up, puts it in the place of ``out_dir`` as a whole, so a reader never
sees a mix of two runs' shards (the swap is two renames on a local disk).
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence

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
COUNTS_FILE, DEAD_LETTERS_FILE, DUPLICATES_FILE = "counts.json", "dead_letters.jsonl", "duplicates.jsonl"
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


def split_of(post_id: str, eval_fraction: float) -> int:
    """0 (train) or 1 (eval), from a hash of the id: the same post lands in the same split on every run."""
    bucket = int.from_bytes(hashlib.sha256(post_id.encode("utf-8")).digest()[:8], "big") / 2**64
    return int(bucket < eval_fraction)


class ParseWeibo(beam.PTransform):
    """``(source, raw bytes)`` records → tagged outputs ``posts`` (``(source, WeiboPost)``) and ``dead_letters``
    (DeadLetter)."""

    def __init__(self, parser: weibo.RecordParser) -> None:
        super().__init__()
        self.parser = parser

    def expand(self, records: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return records | beam.ParDo(_ParseFn(self.parser)).with_outputs(DEAD_LETTERS, main=POSTS)


class _ParseFn(beam.DoFn):
    def __init__(self, parser: weibo.RecordParser) -> None:
        self.parser = parser
        self.read = Metrics.counter(NAMESPACE, "read")
        self.dead_lettered = {reason: Metrics.counter(NAMESPACE, f"dead_letter_{reason}") for reason in weibo.REASONS}

    def process(self, record: tuple[str, bytes]) -> Iterator[tuple[str, weibo.WeiboPost] | beam.pvalue.TaggedOutput]:
        self.read.inc()
        result = self.parser.parse_or_dead_letter(*record)
        if isinstance(result, weibo.WeiboPost):
            yield record[0], result
        else:
            self.dead_lettered[result.reason].inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, result)


def keep_one(sourced_posts: Iterable[tuple[str, weibo.WeiboPost]]) -> tuple[weibo.WeiboPost, list[weibo.Duplicate]]:
    """Of ``(source, post)`` s sharing an id: the kept post (longest text; ties: smallest JSON form, then source) and
    a :class:`tfcl.data.weibo.Duplicate` for each other one. The choice does not depend on their order."""
    ranked = sorted(sourced_posts, key=lambda sourced: (-len(sourced[1].text), sourced[1].to_json(), sourced[0]))
    (kept_source, kept), dropped = ranked[0], ranked[1:]
    return kept, [weibo.Duplicate(source, kept.id, kept_source, post) for source, post in dropped]


class IngestWeibo(beam.PTransform):
    """``(source, raw bytes)`` records → ``{"train", "eval"}`` posts, ``"dead_letters"``, ``"duplicates"`` and
    ``"tallies"``.

    ``tallies`` holds ``(name, n)`` pairs; :func:`counts_report` turns their sums into the counts file.
    """

    def __init__(self, parser: weibo.RecordParser, eval_fraction: float = 0.1) -> None:
        super().__init__()
        if not 0 <= eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
        self.parser = parser
        self.eval_fraction = eval_fraction

    def expand(self, records: beam.PCollection) -> dict[str, beam.PCollection]:
        parsed = records | "Parse" >> ParseWeibo(self.parser)
        kept_and_dropped = (
            parsed[POSTS]
            | "KeyById" >> beam.Map(lambda sourced: (sourced[1].id, sourced))
            | "GroupById" >> beam.GroupByKey()
            | "KeepOnePerId" >> beam.MapTuple(lambda _, sourced_posts: keep_one(sourced_posts))
        )
        duplicates = kept_and_dropped | "Dropped" >> beam.FlatMap(_count_duplicates)
        train, eval_ = (
            kept_and_dropped
            | "Kept" >> beam.MapTuple(lambda kept, _: kept)
            | "SplitByIdHash" >> beam.Partition(_partition, len(SPLITS), self.eval_fraction)
        )
        tallies = (
            records | "TallyRead" >> beam.Map(lambda _: ("read", 1)),
            parsed[DEAD_LETTERS] | "TallyDeadLetters" >> beam.Map(lambda letter: (f"dead_letter/{letter.reason}", 1)),
            duplicates | "TallyDuplicates" >> beam.Map(lambda _: ("duplicates", 1)),
            train | "TallyTrain" >> beam.Map(lambda _: ("train", 1)),
            eval_ | "TallyEval" >> beam.Map(lambda _: ("eval", 1)),
        ) | "AllTallies" >> beam.Flatten()
        return {
            "train": train,
            "eval": eval_,
            DEAD_LETTERS: parsed[DEAD_LETTERS],
            "duplicates": duplicates,
            "tallies": tallies,
        }


def _partition(post: weibo.WeiboPost, num_partitions: int, eval_fraction: float) -> int:
    split = split_of(post.id, eval_fraction)
    Metrics.counter(NAMESPACE, f"written_{SPLITS[split]}").inc()
    return split


def _count_duplicates(
    kept_and_dropped: tuple[weibo.WeiboPost, list[weibo.Duplicate]],
) -> list[weibo.Duplicate]:
    dropped = kept_and_dropped[1]
    Metrics.counter(NAMESPACE, "duplicates").inc(len(dropped))
    return dropped


def counts_report(tally: dict[str, int]) -> dict:
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


def topic_tables(rows: Iterable[tuple[str, tuple[int, int]]], min_count: int) -> tuple[str, str]:
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

    def __init__(self, paths: Sequence[str], fmt: str) -> None:
        super().__init__()
        self.paths = list(paths)
        self.fmt = fmt

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        paths = pbegin | "Paths" >> beam.Create(self.paths)
        if self.fmt == "jsonl":
            return paths | beam.io.ReadAllFromText(coder=beam.coders.BytesCoder(), with_filename=True)
        return paths | fileio.MatchAll() | fileio.ReadMatches() | beam.FlatMap(_csv_file_records)


def _csv_file_records(readable_file: fileio.ReadableFile) -> Iterator[tuple[str, bytes]]:
    with readable_file.open() as file:
        _, records = weibo.open_records(file, "csv", source=readable_file.metadata.path)
        yield from records


def input_format(paths: Sequence[str], fmt: str | None = None) -> str:
    """The one format of all ``paths`` (given, or detected from each file); CSV inputs must share a header."""
    formats = {fmt or weibo.detect_format(path, _head(path)) for path in paths}
    if len(formats) > 1:
        raise weibo.InputError(f"inputs mix formats {sorted(formats)}: ingest JSON lines and CSV in separate runs")
    return formats.pop()


def record_parser(paths: Sequence[str], fmt: str, encoding: str = "utf-8", **options) -> weibo.RecordParser:
    """The parser for ``paths``: for CSV, built from the header row, which every file must share."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise weibo.InputError(f"unknown encoding {encoding!r}") from None
    if fmt == "jsonl":
        return weibo.RecordParser("jsonl", encoding=encoding, **options)
    parsers = {}
    for path in paths:
        with FileSystems.open(path) as file:
            parsers[path] = weibo.open_records(file, "csv", encoding, source=path)[0]
    headers = {parser.csv_columns for parser in parsers.values()}
    if len(headers) > 1:
        raise weibo.InputError(
            f"CSV inputs have different headers: { {p: list(v.csv_columns) for p, v in parsers.items()} }"
        )
    return weibo.RecordParser("csv", headers.pop(), encoding=encoding, **options)


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Every file matching the input paths or glob patterns; a directory stands for its JSON-lines and CSV files
    (``.gz`` too). Empty files are skipped. Raises :class:`tfcl.data.weibo.InputError` when a pattern matches
    nothing or every file is empty."""
    paths = []
    for pattern in inputs:
        directory = os.path.isdir(pattern)
        matched = _match(os.path.join(pattern, "*") if directory else pattern)
        if directory:
            matched = [path for path in matched if _is_data_file(path)]
        if not matched:
            kinds = " (.jsonl, .json, .ndjson or .csv files, .gz too)" if directory else ""
            raise weibo.InputError(f"no input file matches {pattern!r}{kinds}")
        paths += matched
    non_empty = [path for path in paths if FileSystems.match([path])[0].metadata_list[0].size_in_bytes]
    if not non_empty:
        raise weibo.InputError(f"the inputs are empty: {', '.join(paths)}")
    for path in sorted(set(paths) - set(non_empty)):
        logger.warning("%s is empty: skipped", path)
    return non_empty


def _match(pattern: str) -> list[str]:
    return sorted(metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list)


def _is_data_file(path: str) -> bool:
    name = os.path.basename(path).lower().removesuffix(".gz")
    return not name.startswith(".") and name.endswith((".jsonl", ".json", ".ndjson", ".csv"))


@dataclasses.dataclass(frozen=True)
class Destinations:
    """Where :func:`build_ingestion` writes: ``split_writer(split)`` is a PTransform of that split's
    ``tf.train.Example`` s; ``dead_letters_dir`` gets ``dead_letters.jsonl``, ``duplicates.jsonl`` and
    ``counts.json``; ``topics_dir`` gets ``topic_counts.tsv`` and ``topic_vocab.tsv``."""

    split_writer: Callable[[str], beam.PTransform]
    dead_letters_dir: str
    topics_dir: str


def tfrecord_writer(out_dir: str, num_shards: int) -> Callable[[str], beam.PTransform]:
    """The CLI's split writer: ``out_dir/<split>/part-*-of-<num_shards>.tfrecord.gz``."""

    def write(split: str) -> beam.PTransform:
        return beam.io.WriteToTFRecord(
            os.path.join(out_dir, split, "part"),
            coder=beam.coders.ProtoCoder(tf.train.Example),
            file_name_suffix=".tfrecord.gz",
            num_shards=num_shards,
        )

    return write


def build_ingestion(
    pipeline: beam.Pipeline,
    paths: Sequence[str],
    fmt: str,
    parser: weibo.RecordParser,
    destinations: Destinations,
    *,
    eval_fraction: float = 0.1,
    min_topic_count: int = 5,
) -> None:
    """Add the ingestion job to ``pipeline``: read ``paths``, parse, de-duplicate, split, and write every output
    (see the module's diagram) to ``destinations``."""
    outputs = pipeline | "Read" >> ReadWeiboRecords(paths, fmt) | "Ingest" >> IngestWeibo(parser, eval_fraction)
    for split in SPLITS:
        (
            outputs[split]
            | f"ToExample[{split}]" >> beam.Map(weibo.to_example)
            | f"Write[{split}]" >> destinations.split_writer(split)
        )
    for key, name, to_json in (
        (DEAD_LETTERS, DEAD_LETTERS_FILE, weibo.DeadLetter.to_json),
        ("duplicates", DUPLICATES_FILE, weibo.Duplicate.to_json),
    ):
        (
            outputs[key]
            | f"Json[{name}]" >> beam.Map(to_json)
            | f"Write[{name}]" >> WriteSingleFile(destinations.dead_letters_dir, name)
        )
    (
        outputs["tallies"]
        | "SumTallies" >> beam.CombinePerKey(sum)
        | "TallyDict" >> beam.combiners.ToDict()
        | "Report" >> beam.Map(lambda tally: json.dumps(counts_report(tally), indent=2, sort_keys=True))
        | f"Write[{COUNTS_FILE}]" >> WriteSingleFile(destinations.dead_letters_dir, COUNTS_FILE)
    )
    tables = (
        [outputs[split] | f"Topics[{split}]" >> beam.FlatMap(_topic_events, split) for split in SPLITS]
        | "AllTopics" >> beam.Flatten()
        | "CountTopics" >> beam.CombinePerKey(beam.combiners.TupleCombineFn(sum, sum))
        | "TopicRows" >> beam.combiners.ToList()
        | "TopicTables" >> beam.Map(topic_tables, min_topic_count)
    )
    for index, name in enumerate((TOPIC_COUNTS_FILE, TOPIC_VOCAB_FILE)):
        (
            tables
            | f"Table[{name}]" >> beam.Map(lambda both, i=index: both[i])
            | f"Write[{name}]" >> WriteSingleFile(destinations.topics_dir, name, lines=False)
        )


def read_counts(folder: str) -> dict:
    """The ``counts.json`` an ingestion run wrote to ``folder``."""
    with FileSystems.open(os.path.join(folder, COUNTS_FILE)) as file:
        return json.loads(file.read())


def check_counts(counts: dict) -> None:
    """Raise ``RuntimeError`` unless ``read = written + dead_lettered + duplicates``."""
    accounted = counts["written"] + counts["dead_lettered"] + counts["duplicates"]
    if counts["read"] != accounted:
        raise RuntimeError(f"counts do not add up: read {counts['read']} != {accounted} accounted for ({counts})")


def shortfall(counts: dict, min_written: int = 1, encoding: str = "utf-8") -> str:
    """Why a run that wrote fewer than ``min_written`` posts failed, in one line ("" if it wrote enough); when the
    dead letters are mostly ``bad_encoding`` it suggests another ``--encoding``."""
    if counts["written"] >= min_written:
        return ""
    reasons = {reason: n for reason, n in counts["dead_letter_reasons"].items() if n}
    why = f" ({', '.join(f'{reason} {n}' for reason, n in reasons.items())})" if reasons else ""
    message = (
        f"wrote {counts['written']} posts, fewer than --min-written {min_written}: of {counts['read']} records "
        f"read, {counts['dead_lettered']} were dead-lettered{why} and {counts['duplicates']} were duplicates"
    )
    if reasons.get("bad_encoding", 0) * 2 > counts["dead_lettered"]:
        other = "utf-8" if encoding.lower().replace("-", "") == "gb18030" else "gb18030"
        message += f"; most records are not {encoding}: try --encoding {other}"
    return message


def run_ingestion(
    inputs: Iterable[str],
    out_dir: str | os.PathLike,
    *,
    fmt: str | None = None,
    encoding: str = "utf-8",
    min_topic_count: int = 5,
    eval_fraction: float = 0.1,
    num_shards: int = 4,
    max_chars: int = weibo.MAX_CHARS,
    normalization: weibo.Normalization = weibo.Normalization(),
    pipeline_args: Sequence[str] = (),
) -> dict:
    """Ingest ``inputs`` (paths, globs or folders of JSON-lines or CSV files) into ``out_dir``; returns the counts.

    The run writes a new folder next to ``out_dir`` and replaces ``out_dir`` with it once its counts add up, so
    ``out_dir`` holds exactly one run's output. A folder that is not an ingestion output (it has files but no
    ``counts.json``) is not replaced: :class:`tfcl.data.weibo.InputError`, as for missing or empty inputs.
    ``pipeline_args``: Beam's (see :func:`pipeline_options`). Raises ``RuntimeError`` if the counts do not add up.
    """
    paths = expand_inputs(inputs)
    fmt = input_format(paths, fmt)
    parser = record_parser(paths, fmt, encoding, max_chars=max_chars, normalization=normalization)
    out_dir = str(out_dir).rstrip("/")
    _check_replaceable(out_dir)
    if parser.derives_ids:
        logger.info(
            "%s has no id column: ids are derived from user and text (%s...)", paths[0], weibo.DERIVED_ID_PREFIX
        )
    parent, name = os.path.split(out_dir)
    run_dir = os.path.join(parent, f".{name}.incomplete-{uuid.uuid4().hex[:12]}")
    with beam.Pipeline(options=PipelineOptions(list(pipeline_args))) as pipeline:
        build_ingestion(
            pipeline,
            paths,
            fmt,
            parser,
            Destinations(tfrecord_writer(run_dir, num_shards), run_dir, run_dir),
            eval_fraction=eval_fraction,
            min_topic_count=min_topic_count,
        )
    counts = read_counts(run_dir)
    check_counts(counts)
    _replace(out_dir, run_dir)
    return counts


def _check_replaceable(out_dir: str) -> None:
    if not FileSystems.exists(out_dir) or FileSystems.exists(os.path.join(out_dir, COUNTS_FILE)):
        return
    if FileSystems.match([os.path.join(out_dir, "*")])[0].metadata_list:
        raise weibo.InputError(
            f"--out {out_dir} holds files of something else (no {COUNTS_FILE}): an ingestion replaces its output "
            "folder as a whole, so give a new or empty folder"
        )


def _replace(out_dir: str, run_dir: str) -> None:
    """Put the finished ``run_dir`` in the place of ``out_dir`` (the previous run's output is deleted)."""
    if not FileSystems.exists(out_dir):
        FileSystems.rename([run_dir], [out_dir])
        return
    retired = f"{run_dir}.replaced"
    FileSystems.rename([out_dir], [retired])
    FileSystems.rename([run_dir], [out_dir])
    FileSystems.delete([retired])


class WriteSingleFile(beam.PTransform):
    """Write a PCollection of strings to one file ``folder/name`` (one line each, or as they are)."""

    def __init__(self, folder: str, name: str, lines: bool = True) -> None:
        super().__init__()
        self.path = os.path.join(folder, name)
        self.lines = lines

    def expand(self, texts: beam.PCollection) -> beam.PCollection:
        return texts | beam.io.WriteToText(
            self.path, num_shards=1, shard_name_template="", append_trailing_newlines=self.lines
        )


def _head(path: str, size: int = 64) -> bytes:
    with FileSystems.open(path) as file:
        return file.read(size)


def _topic_events(post: weibo.WeiboPost, split: str) -> list[tuple[str, tuple[int, int]]]:
    return [(topic, (int(split == "train"), int(split == "eval"))) for topic in post.topics]
