"""Approximate nearest neighbours in TF ops: recall@10 and query latency of :class:`tfcl.index.IVFIndex` against
:class:`tfcl.index.ExactIndex` at 100k, 500k and 1M vectors, both measured side by side in the same process.

Vectors: synthetic, clustered like text embeddings, L2-normalised in ``--dims`` dimensions: a mixture of
``--components`` Gaussian topics with Zipf-distributed sizes (weight of the r-th topic ∝ 1 / r) in a
``--latent-dims`` subspace (topic means ~ N(0, I), spread ``--spread`` around them), mapped by a random orthonormal
projection, plus isotropic noise ``--noise`` in every dimension. Queries are further draws of the same mixture
(not in the index). With ``--weibo``, also real embeddings: LSA (TF-IDF of character 1–2-grams, truncated SVD to
``--dims``) of every post of the Weibo day files, ``--queries`` of them held out of the index as queries.

Recall@10: the share of the IVF index's top 10 that belongs to the exact top 10, over ``--queries`` queries, ties
counted as hits (an answer whose cosine reaches the exact 10th cosine; duplicate posts tie).
Latency: one batch of ``--batch`` queries through each index's ``search`` (a ``tf.function``, traced before
timing), median wall time over ``--repeats`` calls, alternating exact and IVF; speedup = exact / IVF. Index build
(10 Lloyd iterations of k-means on a sample of 32 vectors per list, then assignment of all) is timed once.

Writes results/ann.{json,md}.   nice python benchmarks/ann.py --vectors 100000 500000 1000000 --nprobe 8 16 32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfcl.index import STORAGE, ExactIndex, IVFIndex, l2_normalised

RESULTS = Path(__file__).parent / "results"
K = 10


def clustered_vectors(
    count: int, dims: int, components: int, latent_dims: int, spread: float, noise: float, seed: int = 0
) -> np.ndarray:
    """``[count, dims]`` unit vectors of the topic mixture described in the module docstring (same ``seed``, same
    mixture; rows are drawn in chunks to bound memory)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, components + 1)
    means = rng.normal(size=(components, latent_dims)).astype(np.float32)
    projection = np.linalg.qr(rng.normal(size=(dims, latent_dims)))[0].T.astype(np.float32)  # [latent, dims]
    topics = rng.choice(components, count, p=weights / weights.sum())
    chunks = []
    for start in range(0, count, 65536):
        chosen = topics[start : start + 65536]
        latent = means[chosen] + spread * rng.standard_normal((len(chosen), latent_dims), np.float32)
        chunks.append(latent @ projection + noise * rng.standard_normal((len(chosen), dims), np.float32))
    return l2_normalised(np.concatenate(chunks))


def weibo_lsa_vectors(data: Path, dims: int) -> np.ndarray:
    """``[posts, dims]`` unit LSA embeddings of the documents of every post of the day files under ``data``
    (``*.csv`` and ``*/*.csv.gz``): TF-IDF of character 1–2-grams (at most 2^18), truncated SVD."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    from tfcl.data.weibo import read_posts

    files = sorted(data.glob("*.csv")) + sorted(data.glob("*/*.csv.gz"))
    documents = [post.document for path in files for post in read_posts(path, dead_letters=[]) if post.document]
    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), max_features=2**18, sublinear_tf=True)
    svd = TruncatedSVD(dims, n_iter=4, random_state=0)
    return l2_normalised(svd.fit_transform(tfidf.fit_transform(documents)))


def median_seconds(search: tf.types.experimental.GenericFunction, batch: tf.Tensor, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        positions, _ = search(batch)
        positions.numpy()
        times.append(time.perf_counter() - start)
    return times


def recall_at_k(vectors: np.ndarray, queries: np.ndarray, found: np.ndarray, exact: np.ndarray) -> float:
    """The mean share of the k positions ``found`` that are among the ``exact`` top k, counting ties: an answer
    is a hit if its cosine with the query reaches the exact k-th cosine (duplicate posts tie at the cut)."""
    cosines = np.einsum("qd,qkd->qk", queries, vectors[np.maximum(found, 0)])
    cut = np.einsum("qd,qd->q", queries, vectors[exact[:, -1]])[:, None]
    return float(np.mean((found >= 0) & (cosines >= cut - 1e-6)))


def in_batches(search: tf.types.experimental.GenericFunction, queries: np.ndarray, batch: int) -> np.ndarray:
    """``[queries, k]`` the positions ``search`` answers, in batches of ``batch`` queries."""
    return np.concatenate(
        [search(tf.constant(queries[i : i + batch]))[0].numpy() for i in range(0, len(queries), batch)]
    )


def measure(vectors: np.ndarray, queries: np.ndarray, args: argparse.Namespace) -> list[dict]:
    exact = ExactIndex(vectors, K)
    truth = in_batches(exact.search, queries, args.batch)
    batch = tf.constant(queries[: args.batch])
    rows = []
    for nlist in args.nlist or [None]:
        start = time.perf_counter()
        ivf = IVFIndex(vectors, K, nlist, max(args.nprobe), args.list_size, storage=args.storage)
        build_seconds = time.perf_counter() - start
        for nprobe in args.nprobe:
            nprobe = ivf.set_nprobe(nprobe)
            recall = recall_at_k(vectors, queries, in_batches(ivf.search, queries, args.batch), truth)
            exact.search(batch), ivf.search(batch)  # traced, warm
            exact_times, ivf_times = [], []
            for _ in range(args.repeats):
                exact_times += median_seconds(exact.search, batch, 1)
                ivf_times += median_seconds(ivf.search, batch, 1)
            exact_ms, ivf_ms = 1000 * statistics.median(exact_times), 1000 * statistics.median(ivf_times)
            rows.append(
                {
                    "vectors": len(vectors),
                    "dims": vectors.shape[1],
                    "nlist": ivf.nlist,
                    "blocks": ivf.blocks,
                    "list_size": ivf.list_size,
                    "nprobe": nprobe,
                    "storage": args.storage,
                    "candidates_per_query": nprobe * ivf.list_size,
                    "recall_at_10": round(recall, 4),
                    "exact_ms": round(exact_ms, 2),
                    "ivf_ms": round(ivf_ms, 2),
                    "speedup": round(exact_ms / ivf_ms, 2),
                    "build_s": round(build_seconds, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(report: dict) -> str:
    setup = report["setup"]
    data = []
    if any(row["data"] == "synthetic" for row in report["ann"]):
        data.append(
            f"`synthetic`, clustered unit vectors ({setup['dims']} dims: {setup['components']} Zipf-sized Gaussian "
            f"topics in a {setup['latent_dims']}-dim subspace, spread {setup['spread']}, noise {setup['noise']}; "
            "see the benchmark's docstring)"
        )
    if "weibo" in report:
        data.append(
            f"`weibo_lsa`, LSA embeddings ({setup['dims']} dims) of {report['weibo']['posts']} real Weibo posts"
        )
    lines = [
        "# Approximate nearest neighbours in TF ops: IVF vs exact",
        "",
        "Data: " + "; ".join(data) + f". Recall@10 against exact search over {setup['queries']} held-out "
        f"queries; latency of one batch of {setup['batch']} queries, median of {setup['repeats']} calls "
        f"alternating exact and IVF in one process; {report['machine']}, load average before the run "
        f"{report['load_average']} (other jobs share the cores).",
        "",
        "| data | vectors | nlist | blocks | list size | nprobe | storage | candidates/query | recall@10 | exact ms "
        "| IVF ms | speedup | build s |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["ann"]:
        lines.append(
            f"| {row['data']} | {row['vectors']} | {row['nlist']} | {row['blocks']} | {row['list_size']} | "
            f"{row['nprobe']} | {row['storage']} | "
            f"{row['candidates_per_query']} | {row['recall_at_10']:.4f} | {row['exact_ms']} | {row['ivf_ms']} | "
            f"{row['speedup']} | {row['build_s']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, nargs="*", default=[100_000, 500_000, 1_000_000])
    parser.add_argument("--nlist", type=int, nargs="*", help="k-means lists (default: IVFIndex's, 4·sqrt(n))")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--list-size", type=int, help="block size (default: IVFIndex's, the mean list size)")
    parser.add_argument("--storage", choices=STORAGE, default="float32", help="dtype of the IVF lists")
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--latent-dims", type=int, default=32)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--weibo", type=Path, help="also: LSA embeddings of the posts of these Weibo day files")
    parser.add_argument("--out", default="ann")
    args = parser.parse_args(argv)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "setup": {
            key: getattr(args, key)
            for key in ("dims", "components", "latent_dims", "spread", "noise", "queries", "batch", "repeats")
        },
        "ann": [],
    }
    for count in args.vectors:
        mixture = clustered_vectors(
            count + args.queries, args.dims, args.components, args.latent_dims, args.spread, args.noise
        )
        rows = measure(mixture[: -args.queries], mixture[-args.queries :], args)
        report["ann"] += [{**row, "data": "synthetic"} for row in rows]
        del mixture
    if args.weibo:
        vectors = weibo_lsa_vectors(args.weibo, args.dims)
        held_out = np.random.default_rng(0).permutation(len(vectors))
        report["weibo"] = {"posts": len(vectors), "queries": args.queries}
        rows = measure(vectors[held_out[args.queries :]], vectors[held_out[: args.queries]], args)
        report["ann"] += [{**row, "data": "weibo_lsa"} for row in rows]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
