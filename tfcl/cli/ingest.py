"""``tfcl ingest``: Weibo records → TFRecords with Apache Beam, and the generated sample corpus.

tfcl ingest weibo posts.jsonl exports/*.csv --out data/weibo [--min-topic-count 5] [--eval-fraction 0.1]
    [--min-written 1] [--direct-num-workers 2] [--runner DataflowRunner --pipeline-arg=--project=... ...]
tfcl ingest sample --out sample.jsonl --posts 2000

Exit status: 0; 1 when fewer than ``--min-written`` posts were written (one line on stderr says why, the counts
are printed and the output folder holds the run's dead letters); 2 for inputs that cannot be ingested (missing,
empty, no usable CSV header, mixed formats) or an ``--out`` that is not an ingestion output.
"""

from __future__ import annotations

import argparse
import json

from tfcl.cli.console import UserError
from tfcl.data.weibo import MAX_CHARS, PLACEHOLDERS, POLICIES, Normalization


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ingest", help="turn raw Weibo records into TFRecords (Apache Beam)")
    sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")

    weibo = sources.add_parser("weibo", help="JSON-lines or CSV Weibo exports → TFRecords, topic vocabulary, counts")
    weibo.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="files, glob patterns or folders (any Beam file system)"
    )
    weibo.add_argument("--out", required=True, help="output folder (replaced as a whole by each run)")
    weibo.add_argument(
        "--format", choices=("jsonl", "csv"), help="default: from each file's name, else its first bytes"
    )
    weibo.add_argument("--encoding", default="utf-8", help="text encoding of the inputs (default utf-8)")
    weibo.add_argument("--min-topic-count", type=int, default=5, help="train posts a vocabulary topic needs")
    weibo.add_argument("--eval-fraction", type=float, default=0.1, help="share of posts (by id hash) held out")
    weibo.add_argument("--max-chars", type=int, default=MAX_CHARS, help="longer texts are dead-lettered as oversize")
    weibo.add_argument("--num-shards", type=int, default=4, help="TFRecord files per split")
    weibo.add_argument(
        "--min-written", type=int, default=1, help="fail (exit 1) when fewer posts are written (default %(default)s)"
    )
    for kind in PLACEHOLDERS:
        weibo.add_argument(
            f"--{kind}",
            choices=POLICIES,
            default=getattr(Normalization(), kind),
            help=f"{kind} in the document (default %(default)s)",
        )
    weibo.add_argument(
        "--lost-emoji-mark",
        default="?",
        help='the character a lossy encoding left for emoji, dropped from documents ("" keeps it)',
    )
    weibo.add_argument(
        "--keep-card-residue",
        action="store_true",
        help="keep video/link-card residue (L<name>的微博视频, 收起全文d...) in documents",
    )
    weibo.add_argument(
        "--runner",
        default="DirectRunner",
        help="Beam runner: DirectRunner (default), DataflowRunner, FlinkRunner, SparkRunner",
    )
    weibo.add_argument(
        "--direct-num-workers",
        type=int,
        default=1,
        help="DirectRunner worker processes (0: one per core); above 1 runs in multi_processing mode",
    )
    weibo.add_argument(
        "--pipeline-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more Beam pipeline option, passed through, e.g. --pipeline-arg=--project=my-project (repeatable)",
    )
    weibo.set_defaults(run=run_weibo, log_file=ingestion_log)

    sample = sources.add_parser("sample", help="write the generated sample corpus (Weibo format, NOT Weibo data)")
    sample.add_argument("--out", required=True, help="the JSON-lines file to write")
    sample.add_argument("--posts", type=int, default=2000, help="distinct well-formed posts")
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(run=run_sample)


def ingestion_log(args: argparse.Namespace) -> str | None:
    """The log beside a local ``--out`` (the ingestion replaces that folder as a whole)."""
    return None if "://" in args.out else f"{args.out.rstrip('/')}.log"


def pipeline_args(args: argparse.Namespace) -> list[str]:
    """Beam options from the command line (see :func:`tfcl.data.weibo_ingest.pipeline_options`)."""
    from tfcl.data.weibo_ingest import pipeline_options

    try:
        return pipeline_options(args.runner, args.direct_num_workers, args.pipeline_arg)
    except ValueError as error:
        raise UserError(str(error)) from None


def normalization(args: argparse.Namespace) -> Normalization:
    return Normalization(
        **{kind: getattr(args, kind) for kind in PLACEHOLDERS},
        lost_emoji_mark=args.lost_emoji_mark or None,
        strip_card_residue=not args.keep_card_residue,
    )


def run_weibo(args: argparse.Namespace) -> int | None:
    from tfcl.data.weibo import InputError
    from tfcl.data.weibo_ingest import run_ingestion, shortfall

    try:
        counts = run_ingestion(
            args.inputs,
            args.out,
            fmt=args.format,
            encoding=args.encoding,
            min_topic_count=args.min_topic_count,
            eval_fraction=args.eval_fraction,
            num_shards=args.num_shards,
            max_chars=args.max_chars,
            normalization=normalization(args),
            pipeline_args=pipeline_args(args),
        )
    except InputError as error:
        raise UserError(str(error)) from error
    print(json.dumps(counts, indent=2, sort_keys=True))
    problem = shortfall(counts, args.min_written, args.encoding)
    if problem:
        raise UserError(f"{problem}; see {args.out}/dead_letters.jsonl", exit_code=1)
    return None


def run_sample(args: argparse.Namespace) -> None:
    from tfcl.data.weibo_sample import write_sample

    manifest = write_sample(args.out, posts=args.posts, seed=args.seed)
    print(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True))
