"""Issue 21's serving faults, re-run: each case is provoked against the embedded server and what it did recorded.

:func:`serving_fault_rows` returns one row per case with ``case``, ``expected``, ``observed``, ``data_lost``,
``user_message`` and ``exit_code`` (``benchmarks/reliability.py`` joins them with the other faults). The models are
the serving tests' toy model and a tiny untrained ``weibo_topics`` (``tests/serving_models.py``).

    python benchmarks/reliability_serving.py        # prints the rows as JSON
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the serving tests' model builders

NO_DATA_LOST = "no data lost"
TEXTS = {"texts": np.array(["猫 狗"], dtype=object)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def first_request_after_swap(scratch: Path, swaps: int = 5) -> dict:
    """The slowest first call of a new version's signatures, per swap, against the steady p99 of the version before
    (the median over ``swaps`` swaps is compared: one call on a shared machine can be slow by noise alone)."""
    from serving_models import export_weibo_topics, publish

    from tfcl.serving import ModelServer, ServingClient, single_model_config

    model_dir = scratch / "weibo_topics"
    publish(model_dir, 1, export_weibo_topics)
    signatures = ("predict_topics", "embed_post", "similar_posts")
    firsts = []
    with ModelServer(single_model_config("weibo_topics", model_dir), port=0, poll_seconds=0.1) as server:
        with ServingClient(server.address, timeout=120) as client:

            def call(name: str) -> float:
                started = time.perf_counter()
                client.predict("weibo_topics", TEXTS, signature_name=name)
                return (time.perf_counter() - started) * 1000

            for name in signatures * 10:
                call(name)
            p99 = float(np.percentile([call(name) for name in signatures * 50], 99))
            for version in range(2, swaps + 2):
                publish(model_dir, version, export_weibo_topics)
                client.wait_until_available("weibo_topics", version)
                old = version - 1
                _wait_for(lambda old=old: client.model_status("weibo_topics", version=old) == {old: "END"})
                firsts.append(max(call(name) for name in signatures))
    first = float(np.median(firsts))
    return {
        "case": "serving: first requests of a new version",
        "expected": "first request after a swap within 2x the steady p99 (warm-up replayed before AVAILABLE)",
        "observed": f"slowest first call per swap {', '.join(f'{ms:.1f}' for ms in firsts)} ms (median {first:.1f}), "
        f"steady p99 {p99:.1f} ms ({first / p99:.2f}x)",
        "data_lost": NO_DATA_LOST,
        "user_message": "",
        "exit_code": None,
    }


def memory_over_swaps(scratch: Path) -> dict:
    from serving_models import save_toy_model
    from tensorflow_serving.apis import model_pb2
    from tensorflow_serving.config import model_server_config_pb2

    from tfcl.serving.models import ServedModel

    for version in range(1, 12):
        save_toy_model(scratch / "staged" / str(version), seed=version, ballast_mb=48)
    base = scratch / "swapped"
    base.mkdir()
    model = ServedModel(model_server_config_pb2.ModelConfig(name="toy", base_path=str(base)))
    rss = []
    for version in range(1, 12):
        (scratch / "staged" / str(version)).rename(base / str(version))
        model.refresh()
        with model.serve(model_pb2.ModelSpec(name="toy")) as servable:
            servable.run("score", {"features": np.ones((2, 4), np.float32)})
        rss.append(_rss_mb())
    return {
        "case": "serving: memory of unloaded versions (10 swaps of a 48 MB model)",
        "expected": "RSS after 10 swaps within 10 % of RSS after 1",
        "observed": f"RSS {rss[1]:.0f} MB after 1 swap, {rss[10]:.0f} MB after 10 ({rss[10] / rss[1] - 1:+.1%})",
        "data_lost": NO_DATA_LOST,
        "user_message": "",
        "exit_code": None,
    }


def non_atomic_copy(scratch: Path) -> dict:
    from serving_models import push, save_toy_model

    from tfcl.serving import LoadRetries, ModelServer, ServingClient, single_model_config

    model_dir = scratch / "copied"
    push(model_dir, 1)
    save_toy_model(scratch / "complete-2", seed=2)
    retries = LoadRetries(max_retries=5, interval_s=1.0)
    config = single_model_config("toy", model_dir)
    with ModelServer(config, port=0, poll_seconds=0.2, load_retries=retries) as server:
        with ServingClient(server.address) as client:
            copy = model_dir / "2"
            (copy / "variables").mkdir(parents=True)
            shutil.copy(scratch / "complete-2" / "saved_model.pb", copy)  # the variables are not there yet
            _wait_for(lambda: client.model_status("toy").get(2) == "END")
            (failed,) = client.model_status_response("toy", version=2).model_version_status
            served_meanwhile = client.predict_response("toy", TEXTS).model_spec.version.value
            shutil.copytree(scratch / "complete-2" / "variables", copy / "variables", dirs_exist_ok=True)
            started = time.monotonic()
            client.wait_until_available("toy", 2)
            loaded_after = time.monotonic() - started
    return {
        "case": "serving: a version copied into place non-atomically",
        "expected": "the failed load is retried (--max_num_load_retries 5, with a wait) and the version then served",
        "observed": f"first load failed (version {served_meanwhile} kept answering); loaded on a retry "
        f"{loaded_after:.1f} s after the copy completed (retry interval 1 s)",
        "data_lost": NO_DATA_LOST,
        "user_message": failed.status.error_message.splitlines()[0][:160],
        "exit_code": None,
    }


def sigterm_with_a_call_in_flight(scratch: Path) -> dict:
    import grpc
    from serving_models import push

    from tfcl.serving import ServingClient

    push(scratch / "spin", 1)
    command = [sys.executable, "-m", "tfcl.cli", "serve", "--model-name", "spin", "--model-base-path"]
    command += [str(scratch / "spin"), "--port", "0", "--grace", "2"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        address = server.stdout.readline().split()[3]
        answers = []

        def long_call() -> None:
            with ServingClient(address, timeout=600) as client:
                try:
                    client.predict("spin", {"steps": np.array([10**9])}, signature_name="spin")
                except grpc.RpcError as error:
                    answers.append(error.code().name)

        caller = threading.Thread(target=long_call)
        caller.start()
        time.sleep(2)
        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=120)
        lived = time.monotonic() - stopping
        caller.join(60)
        last_line = server.stderr.read().strip().splitlines()[-1]
    finally:
        server.kill()
    return {
        "case": "serving: SIGTERM with a long call in flight (--grace 2)",
        "expected": "the drain is bounded by --grace, then the call is cancelled and the process exits",
        "observed": f"exited {lived:.1f} s after SIGTERM with code {exit_code}; the call was answered "
        f"{answers[0] if answers else 'nothing'}",
        "data_lost": NO_DATA_LOST,
        "user_message": last_line.split(": ", 1)[-1],
        "exit_code": exit_code,
    }


def empty_text(scratch: Path) -> dict:
    import grpc
    from serving_models import push

    from tfcl.serving import ModelServer, ServingClient, single_model_config

    push(scratch / "empty", 1)
    with ModelServer(single_model_config("toy", scratch / "empty"), port=0) as server:
        with ServingClient(server.address) as client:
            try:
                client.predict("toy", {"texts": np.array([""], dtype=object)})
                observed, message = "answered with topics", ""
            except grpc.RpcError as error:
                observed, message = error.code().name, error.details()
    return {
        "case": "serving: an empty post text",
        "expected": "INVALID_ARGUMENT, not topics scored for nothing",
        "observed": observed,
        "data_lost": NO_DATA_LOST,
        "user_message": message,
        "exit_code": None,
    }


def corrupt_version(scratch: Path) -> dict:
    from serving_models import push

    from tfcl.serving import LoadRetries, ModelServer, ServingClient, single_model_config

    model_dir = scratch / "corrupt"
    push(model_dir, 1)
    config = single_model_config("toy", model_dir)
    with ModelServer(config, port=0, poll_seconds=0.1, load_retries=LoadRetries(0)) as server:
        with ServingClient(server.address) as client:
            (model_dir / "2" / "variables").mkdir(parents=True)
            (model_dir / "2" / "saved_model.pb").write_bytes(b"\x00corrupt")
            _wait_for(lambda: client.model_status("toy").get(2) == "END")
            states = client.model_status("toy")
            version = client.predict_response("toy", TEXTS).model_spec.version.value
            (failed,) = client.model_status_response("toy", version=2).model_version_status
    return {
        "case": "serving: a corrupt new version",
        "expected": "never replaces the serving version; its status reports the failure",
        "observed": f"states {states}; requests answered by version {version}",
        "data_lost": NO_DATA_LOST,
        "user_message": failed.status.error_message.splitlines()[0][:160],
        "exit_code": None,
    }


CASES = (first_request_after_swap, memory_over_swaps, non_atomic_copy, sigterm_with_a_call_in_flight, empty_text)
CASES += (corrupt_version,)


def serving_fault_rows() -> list[dict]:
    """Run every serving fault case (a few minutes) and return its row."""
    rows = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as scratch:
            rows.append(case(Path(scratch)))
    return rows


if __name__ == "__main__":
    print(json.dumps(serving_fault_rows(), indent=2, ensure_ascii=False))
