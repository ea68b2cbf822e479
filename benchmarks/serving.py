"""Serving benchmark: ``predict_topics`` in-process vs over TF Serving's gRPC and REST APIs, batching off and on.

The model is the main job's CD-TOM architecture (``tfcl.cli.run.MAIN_JOB_TRAINER``) exported with
``export_weibo_model`` over the generated sample corpus: its topic vocabulary and an index of its posts. It is not
trained (latency does not depend on the weights); ``--model-dir`` benchmarks a pushed version instead (e.g.
``runs/main/serving/weibo_topics/<version>``). The server is ``tfcl serve`` (the embedded TF Serving) in a child
process on loopback ports, started once without and once with ``--batching_parameters_file`` (:data:`BATCHING`);
its RSS is read before the first and after the last request. Clients are threads of this process, each with its
own gRPC channel or HTTP connection. Each request is one post (a batch of 1) of the sample corpus, cycled. For
each path and client count: a warm-up, then requests for ``--seconds``; p50/p99 of per-request latency and
requests/s over the whole window.

Writes results/serving.{md,json}: ``rows`` of ``path`` (in_process, grpc, rest), ``clients``, ``batching``,
``p50_ms``, ``p99_ms``, ``requests_per_s``, ``failed``.   python benchmarks/serving.py --seconds 10
"""

import argparse
import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
MODEL_NAME = "weibo_topics"
SIGNATURE = "predict_topics"
# The server's --batching_parameters_file: merge up to 64 requests; no added wait (batches form while the batch
# threads are busy, as TF Serving's batch_timeout_micros 0 does); two batch threads for the two cores.
BATCHING = {"max_batch_size": 64, "batch_timeout_micros": 0, "num_batch_threads": 2, "max_enqueued_batches": 100}


def sample_posts(posts):
    """The distinct posts of the generated sample corpus (malformed lines and repeated ids left out)."""
    from tfcl.data import weibo
    from tfcl.data.weibo_sample import write_sample

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "sample.jsonl")
        write_sample(path, posts=posts)
        return list({post.id: post for post in weibo.read_posts(path, dead_letters=[])}.values())


def export_main_job_model(posts, path, min_topic_count=5):
    """An untrained CD-TOM of the main job's size, exported with the corpus' topic vocabulary and post index."""
    import collections

    from tfcl.apps.weibo import export_weibo_model
    from tfcl.cli.run import MAIN_JOB_TRAINER
    from tfcl.recipes.cdtom import build_cdtom
    from tfcl.text import learn_vocabulary

    counts = collections.Counter(topic for post in posts for topic in post.topics)
    topics = [topic for topic, n in counts.most_common() if n >= min_topic_count]
    documents = [post.document for post in posts if post.document]
    vocabulary = learn_vocabulary(documents + topics, MAIN_JOB_TRAINER["vocabulary_size"])
    sizes = {name: MAIN_JOB_TRAINER[name] for name in ("num_layers", "num_heads", "hidden_dim", "intermediate_dim")}
    model = build_cdtom(vocabulary, **sizes)
    export_weibo_model(model, topics, [post.id for post in posts if post.document], documents, path)
    return {"topics": len(topics), "index_posts": len(documents), **sizes}


def measure(call, texts, clients, seconds, warmup):
    """Run ``call(client_index, text)`` from ``clients`` threads for ``seconds`` after ``warmup`` calls each."""
    latencies = [[] for _ in range(clients)]
    failures = []
    start_barrier = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(index):
        for n in range(warmup):
            call(index, texts[(index + n) % len(texts)])
        start_barrier.wait()
        n = 0
        while not stop.is_set():
            text = texts[(index * 7919 + n) % len(texts)]
            started = time.perf_counter()
            try:
                call(index, text)
            except Exception as error:  # noqa: BLE001 -- a failed request is counted, not fatal
                failures.append(repr(error))
            latencies[index].append(time.perf_counter() - started)
            n += 1

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    start_barrier.wait()
    window_start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    window = time.perf_counter() - window_start
    all_latencies = np.concatenate([np.asarray(values) for values in latencies]) * 1000
    return {
        "clients": clients,
        "requests": int(all_latencies.size),
        "failed": len(failures),
        "p50_ms": float(np.percentile(all_latencies, 50)),
        "p99_ms": float(np.percentile(all_latencies, 99)),
        "requests_per_s": float(all_latencies.size / window),
    }


def start_server(model_base, batching_file=None):
    """``tfcl serve`` (gRPC and REST) in a child process on free loopback ports: ``(process, grpc, rest address)``."""
    command = [sys.executable, "-m", "tfcl.cli", "serve", "--model-name", MODEL_NAME, "--model-base-path"]
    command += [str(model_base), "--port", "0", "--rest-api-port", "0"]
    if batching_file:
        command += ["--batching-parameters-file", str(batching_file)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("Serving "):
            words = line.split()
            return process, words[3], words[6]
    raise RuntimeError(f"tfcl serve exited with {process.wait()} before serving")


def stop_server(process):
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)


def rss_mb(pid):
    """Resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class RestConnection:
    """One keep-alive HTTP connection posting ``predict_topics`` requests in TF Serving's row format."""

    def __init__(self, url):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)

    def predict(self, text):
        body = json.dumps({"signature_name": SIGNATURE, "instances": [text]})
        self.connection.request("POST", f"/v1/models/{MODEL_NAME}:predict", body)
        answer = self.connection.getresponse()
        payload = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}: {payload[:200]!r}")
        return payload

    def close(self):
        self.connection.close()


def run(args):
    import tensorflow as tf

    from tfcl.serving import ServingClient

    load_before = os.getloadavg()[0]
    posts = sample_posts(args.posts)
    texts = [post.document for post in posts if post.document]
    rows, servers = [], []
    with tempfile.TemporaryDirectory() as scratch:
        model_base = Path(scratch) / MODEL_NAME
        model_info = {"source": args.model_dir}
        if args.model_dir:
            model_base.mkdir(parents=True)
            os.symlink(os.path.abspath(args.model_dir), model_base / "1")
        else:
            started = time.perf_counter()
            model_info = export_main_job_model(posts, str(model_base / "1"))
            model_info.update(source="untrained, main-job size", export_seconds=time.perf_counter() - started)

        def row(path, batching, result):
            rows.append({"path": path, "batching": batching, **result})
            print(f"{path:10} batching={batching!s:5} {result}", flush=True)

        predict_topics = tf.saved_model.load(str(model_base / "1")).signatures[SIGNATURE]
        for clients in args.clients:
            call = lambda _, text: predict_topics(texts=tf.constant([text]))  # noqa: E731
            row("in_process", False, measure(call, texts, clients, args.seconds, args.warmup))

        batching_file = Path(scratch) / "batching.config"
        batching_file.write_text("".join(f"{name} {{ value: {value} }}\n" for name, value in BATCHING.items()))
        for batching in (False, True):
            process, address, rest_url = start_server(model_base, batching_file if batching else None)
            try:
                grpc_clients = [ServingClient(address, timeout=60) for _ in range(max(args.clients))]
                grpc_clients[0].wait_until_available(MODEL_NAME)
                rest_clients = [RestConnection(rest_url) for _ in range(max(args.clients))]
                rss_before = rss_mb(process.pid)
                calls = {
                    "grpc": lambda index, text, connections=grpc_clients: connections[index].predict_response(
                        MODEL_NAME, {"texts": [text]}, signature_name=SIGNATURE
                    ),
                    "rest": lambda index, text, connections=rest_clients: connections[index].predict(text),
                }
                for clients in args.clients:
                    for path, call in calls.items():
                        row(path, batching, measure(call, texts, clients, args.seconds, args.warmup))
                servers.append({"batching": batching, "rss_mb_before": rss_before, "rss_mb_after": rss_mb(process.pid)})
                for connection in [*grpc_clients, *rest_clients]:
                    connection.close()
            finally:
                stop_server(process)
    return {
        "model": model_info,
        "rows": rows,
        "servers": servers,
        "batching_parameters": BATCHING,
        "seconds_per_point": args.seconds,
        "warmup": args.warmup,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "tensorflow": tf.__version__,
        "load_average_1min": {"start": load_before, "end": os.getloadavg()[0]},
    }


def done_when(rows):
    """Issue 18's targets: gRPC with batching at 8 clients p99 <= in-process p99 + 5 ms; at 64, requests/s >= it."""
    by_key = {(row["path"], row["batching"], row["clients"]): row for row in rows}
    checks = {}
    if ("grpc", True, 8) in by_key and ("in_process", False, 8) in by_key:
        grpc8, local8 = by_key["grpc", True, 8], by_key["in_process", False, 8]
        checks["grpc_batching_8_p99_within_5ms"] = grpc8["p99_ms"] <= local8["p99_ms"] + 5
    if ("grpc", True, 64) in by_key and ("in_process", False, 64) in by_key:
        checks["grpc_batching_64_throughput"] = (
            by_key["grpc", True, 64]["requests_per_s"] >= by_key["in_process", False, 64]["requests_per_s"]
        )
    return checks


def write_results(report):
    RESULTS.mkdir(exist_ok=True)
    report["done_when"] = done_when(report["rows"])
    (RESULTS / "serving.json").write_text(json.dumps(report, indent=2) + "\n")
    model = report["model"]
    lines = [
        "# Serving benchmark (`benchmarks/serving.py`)",
        "",
        f"`{SIGNATURE}`, one post per request, {report['seconds_per_point']} s per row after "
        f"{report['warmup']} warm-up requests per client, on {report['machine']} (clients and server share them; "
        f"1-minute load average {report['load_average_1min']['start']:.1f} at the start, "
        f"{report['load_average_1min']['end']:.1f} at the end; this machine is shared). "
        f"Model: {model['source']}"
        + (
            f" ({model['num_layers']}-layer, {model['hidden_dim']}-wide towers; {model['topics']} topics, "
            f"{model['index_posts']} posts in the index)"
            if "topics" in model
            else ""
        )
        + ". Server: `tfcl serve` in a child process; batching parameters "
        + ", ".join(f"`{name}` {value}" for name, value in report["batching_parameters"].items())
        + ".",
        "",
        "| path | batching | clients | requests | failed | p50 (ms) | p99 (ms) | requests/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['path']} | {'on' if row['batching'] else 'off'} | {row['clients']} | {row['requests']} | "
        f"{row['failed']} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['requests_per_s']:.0f} |"
        for row in report["rows"]
    ]
    lines += ["", "| server | RSS before (MB) | RSS after (MB) |", "|---|---|---|"]
    lines += [
        f"| batching {'on' if server['batching'] else 'off'} | {server['rss_mb_before']:.0f} | "
        f"{server['rss_mb_after']:.0f} |"
        for server in report["servers"]
    ]
    lines += ["", "Targets (issue 18): " + ", ".join(f"{name}: {ok}" for name, ok in report["done_when"].items())]
    (RESULTS / "serving.md").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", help="a SavedModel version directory to benchmark (default: export one)")
    parser.add_argument("--posts", type=int, default=2000, help="posts of the generated sample corpus")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64], help="concurrent clients per row")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per row")
    parser.add_argument("--warmup", type=int, default=20, help="requests per client before measuring")
    report = run(parser.parse_args())
    write_results(report)
    print((RESULTS / "serving.md").read_text())


if __name__ == "__main__":
    main()
