"""``tfcl data fetch [NAME...]`` and ``tfcl data info``: the real data sets in the local cache."""

from __future__ import annotations

import argparse
import sys

from tfcl.data.cache import DatasetNotFoundError, data_dir, dataset_dir
from tfcl.data.fetch import DATASETS, FetchError, fetch, format_counts


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="fetch the data sets into the cache and show what is there",
        description=f"Data sets are cached in $TFCL_DATA_DIR (now {data_dir()}).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    fetch_parser = actions.add_parser(
        "fetch",
        help="download, extract and verify data sets (all of them when none is named)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Data sets:\n" + "\n".join(f"  {name:<14} {dataset.summary}" for name, dataset in DATASETS.items()),
    )
    fetch_parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of: {', '.join(DATASETS)}")
    fetch_parser.add_argument("--force", action="store_true", help="fetch again even if already complete")
    fetch_parser.set_defaults(run=run_fetch)

    info_parser = actions.add_parser("info", help="list the data sets, present or missing, with their counts")
    info_parser.set_defaults(run=run_info)


def run_fetch(args: argparse.Namespace) -> int:
    unknown = [name for name in args.names if name not in DATASETS]
    if unknown:
        print(
            f"tfcl data fetch: unknown data set {', '.join(unknown)} (choose from {', '.join(DATASETS)})",
            file=sys.stderr,
        )
        return 2
    try:
        for name in args.names or DATASETS:
            fetch(name, force=args.force)
    except FetchError as error:
        print(f"tfcl data fetch: error: {error}", file=sys.stderr)
        return 1
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print each data set with its counts; exit 1 when any is missing or damaged."""
    print(f"Data sets in {data_dir()}:")
    missing = 0
    for name, dataset in DATASETS.items():
        try:
            folder = dataset_dir(name)
        except DatasetNotFoundError as error:
            print(f"  {name:<14} {error}")
            missing += 1
            continue
        try:
            print(f"  {name:<14} {format_counts(dataset.count(folder))}")
        except (OSError, ValueError) as error:
            print(f"  {name:<14} damaged ({error}); fetch it again with:  tfcl data fetch --force {name}")
            missing += 1
    return 1 if missing else 0
