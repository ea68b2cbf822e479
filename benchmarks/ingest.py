"""Ingestion benchmark: posts/s of ``tfcl ingest weibo`` on the real day files at 1 and N DirectRunner workers.

Each run is the CLI in a child process (``--direct-num-workers W``; above 1 Beam's multi_processing mode) over every
day file of ``--data`` (``weibo_covid_*.csv`` and ``covid_days/*.csv.gz``). Wall time covers the whole command:
interpreter and Beam start-up, reading, parsing, de-duplication, writing. Peak memory is the largest sum of the
resident set sizes of the child and all its descendants (Beam's worker processes), sampled every 0.2 s. Every run's
counts must add up (``read = written + dead_lettered + duplicates``) and every run must count the same.

Writes results/ingest.{md,json}.   nice python benchmarks/ingest.py --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "weibo"  # beside the repository


def day_files(data: Path) -> list[str]:
    """The one-day CSV exports under ``data``: the uncompressed day and the gzip-compressed days."""
    files = sorted(data.glob("weibo_covid_*.csv")) + sorted(data.glob("covid_days/weibo_covid_*.csv.gz"))
    if not files:
        raise SystemExit(f"no weibo_covid_*.csv day files under {data} (see its README.md)")
    return [str(path) for path in files]


class PeakMemory(threading.Thread):
    """Samples the summed RSS of a process and its descendants until it exits; ``peak`` is the largest sum."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.process, self.interval, self.peak = psutil.Process(pid), interval, 0

    def run(self) -> None:
        while True:
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(_rss(process) for process in tree))
            except psutil.NoSuchProcess:
                return
            time.sleep(self.interval)


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def ingest(files: list[str], workers: int, out_dir: str, timeout: float) -> dict:
    """One ``tfcl ingest weibo`` run; its counts, wall seconds and peak memory."""
    command = [sys.executable, "-m", "tfcl.cli", "ingest", "weibo", *files, "--out", out_dir]
    command += ["--direct-num-workers", str(workers)]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(child.pid)
    memory.start()
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise SystemExit(f"{workers} worker(s): no result within {timeout:.0f} s") from None
    seconds = time.perf_counter() - start
    memory.join(timeout=5)
    if child.returncode:
        raise SystemExit(f"{workers} worker(s) failed ({child.returncode}):\n{stderr[-4000:]}")
    counts = json.loads(stdout[stdout.index("{") :])
    accounted = counts["written"] + counts["dead_lettered"] + counts["duplicates"]
    if counts["read"] != accounted:
        raise SystemExit(f"{workers} worker(s): counts do not add up: read {counts['read']} != {accounted}")
    return {
        "workers": workers,
        "seconds": round(seconds, 1),
        "posts_per_second": round(counts["read"] / seconds, 1),
        "peak_memory_mib": round(memory.peak / 2**20),
        "load_after": [round(load, 2) for load in os.getloadavg()],
        "counts": counts,
    }


def markdown(report: dict) -> str:
    lines = [
        "# Ingestion: posts/s on the real day files",
        "",
        f"`tfcl ingest weibo` over {report['files']} day files ({report['input_mib']} MiB on disk), "
        f"{report['machine']}; load average before the runs {report['load_before']} (other jobs share the cores). "
        "Wall time includes start-up; peak memory sums the command and Beam's worker processes.",
        "",
        "| Beam workers | seconds | posts/s | peak memory (MiB) | read | written | dead-lettered | duplicates |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        counts = run["counts"]
        lines.append(
            f"| {run['workers']} | {run['seconds']} | {run['posts_per_second']} | {run['peak_memory_mib']} "
            f"| {counts['read']} | {counts['written']} | {counts['dead_lettered']} | {counts['duplicates']} |"
        )
    lines += ["", "Every run: read = written + dead-lettered + duplicates, and the runs agree on every count.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared Weibo folder (its README.md)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="DirectRunner worker counts")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one run may take")
    parser.add_argument("--name", default="ingest", help="results/<name>.{md,json}")
    args = parser.parse_args(argv)
    files = day_files(args.data.resolve())
    report = {
        "files": len(files),
        "input_mib": round(sum(os.path.getsize(path) for path in files) / 2**20, 1),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "load_before": [round(load, 2) for load in os.getloadavg()],
        "runs": [],
    }
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="tfcl-ingest-bench-") as out_dir:
            report["runs"].append(ingest(files, workers, out_dir, args.timeout))
        print(json.dumps(report["runs"][-1]), flush=True)
    if len({json.dumps(run["counts"], sort_keys=True) for run in report["runs"]}) > 1:
        raise SystemExit(f"the runs count differently: {[run['counts'] for run in report['runs']]}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
