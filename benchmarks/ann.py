"""Approximate nearest neighbours in TF ops: recall@10 and query latency of :class:`tfcl.index.IVFIndex` against
:class:`tfcl.index.ExactIndex` at 100k, 500k and 1M vectors, both measured side by side in the same process.

Vectors: synthetic, clustered like text embeddings, L2-normalised in ``--dims`` dimensions: a mixture of
``--components`` Gaussian topics with Zipf-distributed sizes (weight of the r-th topic ∝ 1 / r) in a
``--latent-dims`` subspace (topic means ~ N(0, I), spread ``--spread`` around them), mapped by a random orthonormal
projection, plus isotropic noise ``--noise`` in every dimension. Queries are further draws of the same mixture
(not in the index). With ``--weibo``, also real embeddings: LSA (TF-IDF of character 1–2-grams, truncated SVD to
``--dims``) of every post of the Weibo day files, ``--queries`` of them held out of the index as queries.

Index: :class:`tfcl.index.IVFIndex` with ``--storage`` lists in blocks of ``--block-size`` vectors, reading a budget
of ``--candidates`` vectors per query (whole blocks, padding included), scored in one stage (``--scan-dims`` equal to
``--dims``) or in two (first in ``--scan-dims`` principal directions, then the best ``--rerank`` by the full vectors);
``scan_energy`` is the share of the vectors' squared norm those directions keep.

Recall@10: the share of the IVF index's top 10 that belongs to the exact top 10, over ``--queries`` queries, ties
counted as hits (an answer whose cosine reaches the exact 10th cosine; duplicate posts tie).
Latency: for each ``--batch`` size, one batch of queries through each index's ``search`` (a ``tf.function``,
traced before timing), the two indexes called alternately on the same batch, a different batch each repeat; the
median wall time over ``--repeats`` pairs; speedup = exact / IVF (one row per batch size). Index build (10 Lloyd
iterations of k-means on a sample of 32 vectors per list, then assignment of all) is timed once.

Writes results/{--out}.{json,md}; the committed runs:
    nice python benchmarks/ann.py --vectors 100000 500000 1000000 --scan-dims 32 128
        --candidates 4000 8000 12000 16000 24000 --queries 512 --repeats 15
    nice python benchmarks/ann.py --vectors --weibo ../shared/data/weibo --scan-dims 32 64 128
        --candidates 2000 4000 8000 12000 --queries 512 --repeats 15 --out ann_weibo
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


def paired_milliseconds(
    searches: list[tf.types.experimental.GenericFunction], queries: np.ndarray, batch: int, repeats: int
) -> list[float]:
    """The median milliseconds of each of ``searches`` over ``repeats`` batches of ``batch`` of ``queries`` (a
    different batch each repeat), the searches called one after another on each batch."""
    times = [[] for _ in searches]
    for repeat in range(repeats + 1):  # the first round traces
        start = repeat * batch % (len(queries) - batch + 1)
        chosen = tf.constant(queries[start : start + batch])
        for search, spent in zip(searches, times):
            began = time.perf_counter()
            search(chosen)[0].numpy()
            spent.append(time.perf_counter() - began)
    return [round(1000 * statistics.median(spent[1:]), 2) for spent in times]


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
    truth = in_batches(exact.search, queries, max(args.batch))
    rows = []
    for scan_dims in args.scan_dims or [vectors.shape[1]]:
        start = time.perf_counter()
        rerank = args.rerank if scan_dims < vectors.shape[1] else None
        ivf = IVFIndex(vectors, K, args.nlist, None, args.block_size, scan_dims, rerank, storage=args.storage)
        build_seconds = time.perf_counter() - start
        sample = vectors[: 32 * 1024]
        projection = ivf.projection.numpy() if ivf.scan_dims < vectors.shape[1] else np.eye(vectors.shape[1])
        energy = float(np.mean(np.sum((sample @ projection) ** 2, axis=1)))
        for candidates in args.candidates:
            candidates = ivf.set_candidates(candidates)
            recall = recall_at_k(vectors, queries, in_batches(ivf.search, queries, max(args.batch)), truth)
            for batch in args.batch:
                exact_ms, ivf_ms = paired_milliseconds([exact.search, ivf.search], queries, batch, args.repeats)
                rows.append(
                    {
                        "vectors": len(vectors),
                        "dims": vectors.shape[1],
                        "nlist": ivf.nlist,
                        "blocks": ivf.blocks,
                        "block_size": ivf.block_size,
                        "scan_dims": ivf.scan_dims,
                        "scan_energy": round(energy, 4),
                        "rerank": ivf.rerank,
                        "storage": args.storage,
                        "candidates_per_query": candidates,
                        "recall_at_10": round(recall, 4),
                        "batch": batch,
                        "exact_ms": exact_ms,
                        "ivf_ms": ivf_ms,
                        "speedup": round(exact_ms / ivf_ms, 2),
                        "build_s": round(build_seconds, 1),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
        del ivf
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
        f"queries; latency of one batch of `batch` queries, median of {setup['repeats']} calls alternating exact "
        f"and IVF on the same batch in one process (exact: `tfcl.index.ExactIndex` as exported, float32); "
        f"{report['machine']}, load average before the run {report['load_average']} (other jobs share the cores). "
        "`scan dims` below `dims`: two-stage scoring (projection on the principal directions keeping `scan energy` "
        "of the squared norm, in `storage`, then the best `rerank` by the full float32 vectors).",
        "",
        "| data | vectors | nlist | blocks | block | scan dims | scan energy | rerank | storage | candidates/query "
        "| recall@10 | batch | exact ms | IVF ms | speedup | build s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["ann"]:
        lines.append(
            f"| {row['data']} | {row['vectors']} | {row['nlist']} | {row['blocks']} | {row['block_size']} | "
            f"{row['scan_dims']} | {row['scan_energy']} | {row['rerank']} | {row['storage']} | "
            f"{row['candidates_per_query']} | {row['recall_at_10']:.4f} | {row['batch']} | {row['exact_ms']} | "
            f"{row['ivf_ms']} | {row['speedup']} | {row['build_s']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, nargs="*", default=[100_000, 500_000, 1_000_000])
    parser.add_argument("--nlist", type=int, nargs="*", help="k-means lists (default: IVFIndex's, 4·sqrt(n))")
    parser.add_argument("--candidates", type=int, nargs="+", default=[8000, 16000], help="vectors read per query")
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--scan-dims", type=int, nargs="*", help="first-stage dims (default: --dims, one stage)")
    parser.add_argument("--rerank", type=int, help="two-stage candidates re-ranked (default: IVFIndex's, 10 k)")
    parser.add_argument("--storage", choices=STORAGE, default="float16", help="dtype of the IVF lists")
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--latent-dims", type=int, default=32)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
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
