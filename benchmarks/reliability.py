"""Fault table: each fault an operator can meet in ingestion, the pipeline and training, run for real.

Where the fault is about the command line, the case runs ``tfcl`` in a child process as a user would and records
its exit status and what it printed on stderr. "Data lost" is measured, not assumed: for an ingestion, every record
read must be in exactly one output file (the train/eval TFRecords, ``dead_letters.jsonl`` or ``duplicates.jsonl``:
their lines are counted, not ``counts.json``); for training, the run must resume from a checkpoint it wrote or keep
the backup for the user. The serving rows come from ``benchmarks/reliability_serving.py`` when it is there.

Writes results/reliability.{md,json}.   python benchmarks/reliability.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
DAY_FILE = ROOT.parent / "shared" / "data" / "weibo" / "covid_days" / "weibo_covid_2020-03-01.csv.gz"
TRAIN = ["train", "simclr", "--data", "mnist_5k", "--eval-every", "0", "--steps-per-epoch", "2", "--batch-size", "16"]
NO_DATA_LOST = "no data lost"


def tfcl(*arguments: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m tfcl.cli ARGUMENTS`` in a child process, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tfcl.cli", *arguments],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


def error_lines(process: subprocess.CompletedProcess | str) -> list[str]:
    stderr = process if isinstance(process, str) else process.stderr
    return [line for line in stderr.splitlines() if line.strip()]


def user_message(process: subprocess.CompletedProcess) -> str:
    """The message of a failed command: its stderr when that is one line, else the number of lines it printed."""
    lines = error_lines(process)
    if process.returncode == 0:
        return ""
    return lines[0] if len(lines) == 1 else f"NOT ONE LINE: {len(lines)} lines on stderr, last: {lines[-1:]}"


def row(case, expected, observed, data_lost, process=None, message=None, exit_code=None):
    return {
        "case": case,
        "expected": expected,
        "observed": observed,
        "data_lost": data_lost,
        "user_message": user_message(process) if process is not None else (message or ""),
        "exit_code": process.returncode if process is not None else exit_code,
    }


def records_in_outputs(out_dir: Path) -> dict[str, int]:
    """Records in each output file of an ingestion folder, counted from the files themselves."""
    import tensorflow as tf

    found = {
        split: sum(
            1 for _ in tf.data.TFRecordDataset(sorted(map(str, (out_dir / split).glob("*.tfrecord.gz"))), "GZIP")
        )
        for split in ("train", "eval")
    }
    for name in ("dead_letters", "duplicates"):
        path = out_dir / f"{name}.jsonl"
        found[name] = len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0
    return found


def ingestion_loss(out_dir: Path, read: int) -> str:
    found = records_in_outputs(out_dir)
    missing = read - sum(found.values())
    return NO_DATA_LOST if missing == 0 else f"{missing} of {read} records in no output file ({found})"


def counts_of(process: subprocess.CompletedProcess) -> dict:
    """The counts ``tfcl ingest weibo`` printed (after the line naming its log), or {}."""
    printed = process.stdout[process.stdout.find("{") :] if "{" in process.stdout else ""
    return json.loads(printed) if printed else {}


def ingest(inputs, out_dir, *options) -> subprocess.CompletedProcess:
    return tfcl("ingest", "weibo", *map(str, inputs), "--out", str(out_dir), *options)


def case_unterminated_quote(scratch: Path) -> dict:
    path = scratch / "unterminated.csv"
    path.write_text(
        'id,text\n1001,#话题# 第一条\n1002,#话题# 第二条\n1003,"#话题# 第三条 引号没有结束\n1004,#话题# 第四条\n',
        encoding="utf-8",
    )
    process = ingest([path], scratch / "unterminated", "--num-shards", "1")
    counts = counts_of(process)
    letters = [json.loads(line) for line in (scratch / "unterminated" / "dead_letters.jsonl").read_text().splitlines()]
    return row(
        "CSV record with an unterminated quote",
        "read 4, written 3, the bad record dead-lettered with file:line, the next record kept",
        f"read {counts['read']}, written {counts['written']}, dead-lettered "
        + ", ".join(f"{letter['reason']} at {Path(letter['source']).name}" for letter in letters),
        ingestion_loss(scratch / "unterminated", counts["read"]),
        process,
    )


def case_reingest_same_out(scratch: Path) -> dict:
    import tensorflow as tf

    from tfcl.data import weibo
    from tfcl.data.weibo_sample import write_sample

    first, second = scratch / "first.jsonl", scratch / "second.jsonl"
    write_sample(first, posts=200, seed=1)
    write_sample(second, posts=60, seed=2)
    out_dir = scratch / "same_out"
    ingest([first], out_dir, "--num-shards", "4")
    process = ingest([second], out_dir, "--num-shards", "2")
    counts = counts_of(process)
    shards = sorted(path.name for path in (out_dir / "train").iterdir())
    loaded = sum(1 for _ in weibo.load_split(str(out_dir), "train"))
    tf.keras.backend.clear_session()
    return row(
        "re-ingest into an existing --out (4 shards, then 2)",
        "the second run replaces the folder: 2 shards per split, load_split('train') = counts.json's train",
        f"{len(shards)} train shards; load_split('train') {loaded}, counts.json train {counts['train']}",
        ingestion_loss(out_dir, counts["read"]),
        process,
    )


def case_wrong_encoding(scratch: Path) -> dict:
    path = scratch / "gb18030.csv"
    path.write_bytes("id,text\n1,#话题# 第一条\n2,#话题# 第二条\n3,#话题# 第三条\n".encode("gb18030"))
    process = ingest([path], scratch / "gb18030")
    counts = counts_of(process)
    return row(
        "GB18030 CSV read as UTF-8 (no --encoding)",
        "non-zero exit, one line: nothing written, mostly bad_encoding, try --encoding gb18030",
        f"written {counts['written']}, dead-lettered {counts['dead_lettered']}",
        ingestion_loss(scratch / "gb18030", counts["read"]),
        process,
    )


def case_bad_input(scratch: Path, name: str, make) -> dict:
    path = make(scratch)
    process = ingest([path], scratch / f"out_{name}")
    return row(
        f"input: {name}",
        "exit 2, one line, no traceback",
        f"exit {process.returncode}, {len(error_lines(process))} stderr line(s), "
        f"traceback: {'yes' if 'Traceback' in process.stderr else 'no'}",
        NO_DATA_LOST + " (nothing to read)",
        process,
    )


def case_directory_input(scratch: Path) -> dict:
    from tfcl.data.weibo_sample import write_sample

    folder = scratch / "exports"
    folder.mkdir()
    manifests = [write_sample(folder / f"day{day}.jsonl", posts=50, seed=day) for day in (1, 2)]
    (folder / "README.md").write_text("not data")
    process = ingest([folder], scratch / "from_folder", "--num-shards", "1")
    counts = counts_of(process)
    lines = sum(manifest["lines"] for manifest in manifests)
    return row(
        "a folder as input",
        f"its 2 .jsonl files are read ({lines} records), README.md is not",
        f"read {counts['read']}",
        ingestion_loss(scratch / "from_folder", counts["read"]),
        process,
    )


def case_foreign_out(scratch: Path) -> dict:
    out_dir = scratch / "my_folder"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("precious")
    path = scratch / "ok.jsonl"
    path.write_text('{"idstr": "1", "text": "#话题# 正文"}\n', encoding="utf-8")
    process = ingest([path], out_dir)
    kept = sorted(entry.name for entry in out_dir.iterdir())
    return row(
        "--out is a folder of something else",
        "exit 2, one line; the folder is left as it was",
        f"folder holds {kept}",
        NO_DATA_LOST if kept == ["notes.txt"] else f"the folder now holds {kept}",
        process,
    )


def case_duplicates(scratch: Path) -> dict:
    path = scratch / "dups.jsonl"
    lines = [{"idstr": "7", "text": "#话题# 短"}, {"idstr": "7", "text": "#话题# 长一些的正文"}]
    lines += [{"idstr": "8", "text": "#话题# 另一条"}, {"idstr": "7", "text": "#话题# 中等长度"}]
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    process = ingest([path], scratch / "dups", "--num-shards", "1")
    counts = counts_of(process)
    duplicates = [json.loads(line) for line in (scratch / "dups" / "duplicates.jsonl").read_text().splitlines()]
    return row(
        "same-id duplicates",
        "the longest text kept; each other one in duplicates.jsonl with the kept record's id",
        f"written {counts['written']}, duplicates {counts['duplicates']}: "
        + ", ".join(f"{item['post']['text']!r} (kept {item['kept_id']})" for item in duplicates),
        ingestion_loss(scratch / "dups", counts["read"]),
        process,
    )


def case_real_day(scratch: Path) -> dict:
    if not DAY_FILE.exists():
        return row("a real day file", "(not run)", f"{DAY_FILE} is absent", "n/a", message="", exit_code=None)
    process = ingest([DAY_FILE], scratch / "day", "--num-shards", "2")
    counts = counts_of(process)
    return row(
        f"a real day file ({DAY_FILE.name}, gzip CSV)",
        "read = written + dead-lettered + duplicates",
        f"read {counts['read']} = written {counts['written']} + dead-lettered {counts['dead_lettered']} + "
        f"duplicates {counts['duplicates']}",
        ingestion_loss(scratch / "day", counts["read"]),
        process,
    )


def case_pipeline_gate(scratch: Path) -> dict:
    from tfx_pipeline.runner import node_executions

    data = scratch / "allbad"
    data.mkdir()
    (data / "allbad.jsonl").write_text("{not json\n" * 30, encoding="utf-8")
    work = scratch / "work"
    process = tfcl("run", "--input", str(data / "allbad.jsonl"), "--work-dir", str(work), "--no-pictures")
    executions = node_executions(str(work / "metadata.sqlite"))
    ran = {node: len(runs) for node, runs in executions.items() if node in ("AnomaliesGate", "Trainer", "Pusher")}
    return row(
        "tfcl run on a corpus whose every record is rejected",
        "stopped by the gate before the Trainer, exit 2, one line with the reason",
        f"executions: {ran}",
        NO_DATA_LOST + " (the records are in the run's dead letters)",
        process,
    )


def case_unchanged_model(scratch: Path) -> dict:
    from tfx import v1 as tfx
    from tfx.dsl.components.base import base_executor
    from tfx.proto import pusher_pb2
    from tfx.utils import proto_utils

    from tfx_pipeline.components import ChangedModelPusherExecutor

    serving = scratch / "model" / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(b"graph")
    (serving / "variables" / "variables.index").write_bytes(b"weights")
    base = scratch / "serving" / "weibo_topics"
    artifacts = tfx.types.standard_artifacts
    pushed = []
    for run in (1, 2):  # the second is a re-run: the cached Trainer's model, blessed again
        model, blessing, pushed_model = artifacts.Model(), artifacts.ModelBlessing(), artifacts.PushedModel()
        model.uri, blessing.uri, pushed_model.uri = (
            str(scratch / "model"),
            str(scratch / f"b{run}"),
            str(scratch / f"p{run}"),
        )
        blessing.set_int_custom_property("blessed", 1)
        destination = pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base))
        )
        ChangedModelPusherExecutor(base_executor.BaseExecutor.Context(tmp_dir=str(scratch))).Do(
            {"model": [model], "model_blessing": [blessing]},
            {"pushed_model": [pushed_model]},
            {"push_destination": proto_utils.proto_to_json(destination)},
        )
        pushed.append(pushed_model.get_int_custom_property("pushed"))
    versions = os.listdir(base)
    return row(
        "pipeline re-run whose model is unchanged",
        "no second version pushed",
        f"pushed per run {pushed}; {len(versions)} version(s) under the serving base",
        NO_DATA_LOST + " (the served version stays)",
        message="",
        exit_code=0,
    )


def kill_after_checkpoints(arguments, backup: Path, checkpoints: int) -> None:
    """Start ``tfcl train`` and SIGKILL it once ``checkpoints`` epochs are backed up (as a crash would)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tfcl.cli", *arguments],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wanted = backup / ("previous" if checkpoints >= 2 else "latest")
    while not wanted.exists() and child.poll() is None:
        time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    child.wait()


def truncate_latest(backup: Path) -> None:
    """What a crash while writing the backup (disk full) leaves: the newest weights file cut short."""
    weights = backup / "latest" / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])


def case_truncated_backup(scratch: Path) -> dict:
    out = scratch / "train_fallback"
    arguments = [*TRAIN, "--out", str(out), "--epochs", "30"]
    kill_after_checkpoints(arguments, out / "backup", checkpoints=2)
    truncate_latest(out / "backup")
    process = tfcl(*TRAIN, "--out", str(out), "--epochs", "4")
    history = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else {}
    said = [line for line in error_lines(process) if "resuming from previous" in line]
    return row(
        "training killed, then its latest backup truncated (disk full)",
        "the rerun says so and resumes from the previous checkpoint",
        f"exit {process.returncode}; {len(history.get('loss', []))} epochs run after resuming; "
        f"said: {said[0] if said else 'nothing'}",
        NO_DATA_LOST + " (resumed from the previous epoch's checkpoint)"
        if said and process.returncode == 0
        else "did not resume",
        message=said[0] if said else "",
        exit_code=process.returncode,
    )


def case_unreadable_backup(scratch: Path) -> dict:
    out = scratch / "train_unreadable"
    kill_after_checkpoints([*TRAIN, "--out", str(out), "--epochs", "30"], out / "backup", checkpoints=1)
    for weights in (out / "backup").rglob("*.weights.h5"):  # every checkpoint cut short
        weights.write_bytes(weights.read_bytes()[:100])
    process = tfcl(*TRAIN, "--out", str(out), "--epochs", "4")
    return row(
        "training backup with no readable checkpoint",
        "exit 2, one line naming the backup folder and how to start over",
        f"backup kept: {(out / 'backup').exists()}",
        NO_DATA_LOST + " (the backup is left for the user)" if (out / "backup").exists() else "backup deleted",
        process,
    )


def case_second_training_run(scratch: Path) -> dict:
    out = scratch / "train_locked"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, "-m", "tfcl.cli", *TRAIN, "--out", str(out), "--epochs", "500"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not (out / "run.lock").exists() or not (out / "run.lock").read_text().strip():
            time.sleep(0.2)
        process = tfcl(*TRAIN, "--out", str(out), "--epochs", "1")
    finally:
        first.kill()
        first.wait()
    return row(
        "a second tfcl train on the same --out",
        f"exit 2, one line naming the first run's pid ({first.pid})",
        f"names pid {first.pid}: {str(first.pid) in process.stderr}",
        NO_DATA_LOST + " (the first run is not disturbed)",
        process,
    )


CASES = {
    "unterminated_quote": case_unterminated_quote,
    "reingest_same_out": case_reingest_same_out,
    "wrong_encoding": case_wrong_encoding,
    "empty_csv": lambda scratch: case_bad_input(scratch, "an empty .csv", lambda s: _write(s / "empty.csv", b"")),
    "missing_path": lambda scratch: case_bad_input(scratch, "a path that does not exist", lambda s: s / "nope.csv"),
    "directory_input": case_directory_input,
    "foreign_out": case_foreign_out,
    "duplicates": case_duplicates,
    "real_day": case_real_day,
    "pipeline_gate": case_pipeline_gate,
    "unchanged_model": case_unchanged_model,
    "truncated_backup": case_truncated_backup,
    "unreadable_backup": case_unreadable_backup,
    "second_training_run": case_second_training_run,
}


def _relative(value, scratch: str):
    """``value`` with the scratch folder written as ``$TMP``, so that the table does not change from run to run."""
    return value.replace(scratch, "$TMP") if isinstance(value, str) else value


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def serving_rows() -> list[dict]:
    """The serving helper's rows (``benchmarks/reliability_serving.py``), when that file is there."""
    if not (Path(__file__).parent / "reliability_serving.py").exists():
        return []
    sys.path.insert(0, str(Path(__file__).parent))
    from reliability_serving import serving_fault_rows

    return serving_fault_rows()


def write_results(rows: list[dict]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reliability.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    cell = lambda value: str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = [
        "# Fault table (`benchmarks/reliability.py`)",
        "",
        "Each case run for real on the final commit; command-line cases run `tfcl` in a child process. "
        '"Data lost" is measured: for ingestion, every record read is in exactly one output file (TFRecords, '
        "dead letters, duplicates: the files' own lines, not counts.json).",
        "",
        "| case | expected | observed | data lost | user message | exit code |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        "| "
        + " | ".join(cell(r[key]) for key in ("case", "expected", "observed", "data_lost", "user_message", "exit_code"))
        + " |"
        for r in rows
    ]
    (RESULTS / "reliability.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), help="run these cases only")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only or CASES:
            folder = Path(scratch) / name
            folder.mkdir()
            started = time.monotonic()
            rows.append({key: _relative(value, scratch) for key, value in CASES[name](folder).items()})
            print(f"{name}: {time.monotonic() - started:.0f} s: {rows[-1]}", flush=True)
    rows += serving_rows()
    write_results(rows)
    print((RESULTS / "reliability.md").read_text())


if __name__ == "__main__":
    main()
