"""Serving benchmark: ``predict_topics`` over TF Serving's gRPC API vs the SavedModel called in-process.

The model is the main job's CD-TOM architecture (``tfcl.cli.run.MAIN_JOB_TRAINER``) exported with
``export_weibo_model`` over the generated sample corpus: its topic vocabulary and an index of its posts. It is not
trained (latency does not depend on the weights); ``--model-dir`` benchmarks a pushed version instead (e.g.
``runs/main/serving/weibo_topics/<version>``). The server is ``tfcl serve`` (the embedded TF Serving) in a child
process on a loopback port; clients are threads of this process, each with its own channel. Each request is one
post (a batch of 1) of the sample corpus, cycled. For each client count: a warm-up, then requests for
``--seconds``; p50/p99 of per-request latency and requests/s over the whole window.

Writes results/serving.{md,json}.   python benchmarks/serving.py --seconds 10
"""

import argparse
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


def start_server(model_base):
    """``tfcl serve`` in a child process on a free loopback port; returns ``(process, address)``."""
    # tensorflow_text first: it registers the ops the model's tokenizer uses (NormalizeUTF8, ...), which
    # tfcl/serving/server.py does not import (yet) itself.
    serve = (
        "import sys, tensorflow_text; from tfcl.cli import main; "
        f"sys.exit(main(['serve', '--model-name', {MODEL_NAME!r}, '--model-base-path', {str(model_base)!r}, "
        "'--port', '0']))"
    )
    process = subprocess.Popen([sys.executable, "-c", serve], stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("Serving "):
            return process, line.split(" on ")[1].split()[0]
    raise RuntimeError(f"tfcl serve exited with {process.wait()} before serving")


def stop_server(process):
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)


def run(args):
    import tensorflow as tf

    from tfcl.serving import ServingClient

    load_before = os.getloadavg()[0]
    posts = sample_posts(args.posts)
    texts = [post.document for post in posts if post.document]
    with tempfile.TemporaryDirectory() as scratch:
        model_base = Path(scratch) / MODEL_NAME
        model_info = {"source": args.model_dir}
        if args.model_dir:
            (model_base / "1").parent.mkdir(parents=True)
            os.symlink(os.path.abspath(args.model_dir), model_base / "1")
        else:
            started = time.perf_counter()
            model_info = export_main_job_model(posts, str(model_base / "1"))
            model_info.update(source="untrained, main-job size", export_seconds=time.perf_counter() - started)

        saved_model = tf.saved_model.load(str(model_base / "1"))
        predict_topics = saved_model.signatures["predict_topics"]
        rows = []
        for clients in args.clients:
            result = measure(
                lambda _, text: predict_topics(texts=tf.constant([text])), texts, clients, args.seconds, args.warmup
            )
            rows.append({"path": "in-process SavedModel", **result})

        process, address = start_server(model_base)
        try:
            connections = [ServingClient(address) for _ in range(max(args.clients))]
            connections[0].wait_until_available(MODEL_NAME)
            for clients in args.clients:
                result = measure(
                    lambda index, text: connections[index].predict_response(
                        MODEL_NAME, {"texts": [text]}, signature_name="predict_topics"
                    ),
                    texts,
                    clients,
                    args.seconds,
                    args.warmup,
                )
                rows.append({"path": "gRPC (tfcl serve, child process)", **result})
            for connection in connections:
                connection.close()
        finally:
            stop_server(process)
    return {
        "model": model_info,
        "results": rows,
        "seconds_per_point": args.seconds,
        "warmup": args.warmup,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "tensorflow": tf.__version__,
        "load_average_1min": {"start": load_before, "end": os.getloadavg()[0]},
    }


def write_results(report):
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(report, indent=2) + "\n")
    model = report["model"]
    lines = [
        "# Serving benchmark (`benchmarks/serving.py`)",
        "",
        f"`predict_topics`, one post per request, {report['seconds_per_point']} s per row after "
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
        + ".",
        "",
        "| path | clients | requests | failed | p50 (ms) | p99 (ms) | requests/s |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['path']} | {row['clients']} | {row['requests']} | {row['failed']} | {row['p50_ms']:.1f} | "
        f"{row['p99_ms']:.1f} | {row['requests_per_s']:.0f} |"
        for row in report["results"]
    ]
    (RESULTS / "serving.md").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", help="a SavedModel version directory to benchmark (default: export one)")
    parser.add_argument("--posts", type=int, default=2000, help="posts of the generated sample corpus")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrent clients per row")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per row")
    parser.add_argument("--warmup", type=int, default=20, help="requests per client before measuring")
    report = run(parser.parse_args())
    write_results(report)
    print((RESULTS / "serving.md").read_text())


if __name__ == "__main__":
    main()
