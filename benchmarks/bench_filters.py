"""Filtered dense search (``--outlet``, ``--since``/``--until``): exact over the allowed rows, or
the vector index with the other rows masked out.

A filtered question knows its allowed passages (one SQL query); what remains is finding the
nearest of them. Two ways, both in :mod:`qa_bot.retrieval`:

* exact: gather the allowed rows of the memory-mapped ``vectors.npy`` and score them all;
  cost and memory grow with the allowed set (copying 300k rows is 460 MB);
* masked: the FAISS index searches as usual and skips rows outside the allowed set
  (``IDSelectorBatch``); nothing is copied, but a very small allowed set leaves an
  approximate index few reachable rows and recall drops.

This prints, for allowed shares from 0.1% to 50%, the p50 latency of each and the recall@10 of
the masked search against the exact answer, on clustered synthetic vectors (the corpus of
``bench_ann.py``) saved to disk and memory-mapped like a real index. The rule in
``store_search._dense_candidates`` comes from this table: exact up to ``EXACT_FILTER_LIMIT`` rows;
beyond, masked when the index is flat (exact anyway, and it copies nothing) or when at least
``MASKED_MIN_SHARE`` of the rows are allowed (an approximate index's recall depends on the
share it may visit, not on the number of rows).

    python benchmarks/bench_filters.py                 # 200,000 x 384, flat and HNSW
    python benchmarks/bench_filters.py --n 1000000     # slower: the HNSW build takes minutes
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_ann import make_corpus
from qa_bot.runtime import prepare_process
from qa_bot.settings import RetrievalSettings
from qa_bot.vector_index import VectorIndex

K = 50  # the retriever asks for `candidates` (50) dense neighbours


def exact_subset(vectors: np.ndarray, allowed: np.ndarray, query: np.ndarray) -> np.ndarray:
    sims = np.asarray(vectors[allowed], dtype=np.float32) @ query
    top = np.argpartition(-sims, min(K, len(sims) - 1))[:K]
    return allowed[top[np.argsort(-sims[top])]]


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--shares", type=float, nargs="+", default=[0.001, 0.01, 0.05, 0.1, 0.3, 0.5]
    )
    args = parser.parse_args(argv)

    corpus = make_corpus(args.n, 384, args.queries, clusters=max(16, args.n // 300), seed=7)
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.npy"
        np.save(path, corpus.vectors)
        vectors = np.load(path, mmap_mode="r")
        indexes = {
            "flat": VectorIndex.build(corpus.vectors, RetrievalSettings(exact_search_limit=args.n)),
        }
        started = time.perf_counter()
        indexes["hnsw"] = VectorIndex.build(
            corpus.vectors, RetrievalSettings(exact_search_limit=0, ann="hnsw")
        )
        print(f"{args.n:,} vectors; HNSW built in {time.perf_counter() - started:.0f} s\n")
        print(
            "| allowed | rows | exact p50 ms | flat masked p50 ms | hnsw masked p50 ms "
            "| hnsw masked recall@50 |"
        )
        print("|---|---|---|---|---|---|")
        for share in args.shares:
            # Whole "articles" (runs of 8 consecutive rows) are allowed, as a filter admits.
            runs = np.flatnonzero(rng.uniform(size=args.n // 8) < share)
            allowed = (runs[:, None] * 8 + np.arange(8)).ravel()
            allowed = allowed[allowed < args.n]
            times: dict[str, list[float]] = {"exact": [], "flat": [], "hnsw": []}
            recall = []
            for query in corpus.queries:
                t0 = time.perf_counter()
                truth = exact_subset(vectors, allowed, query)
                times["exact"].append(time.perf_counter() - t0)
                for kind, index in indexes.items():
                    t0 = time.perf_counter()
                    _, ids = index.search(query, K, allowed=allowed)
                    times[kind].append(time.perf_counter() - t0)
                    if kind == "hnsw":
                        found = set(ids[0][ids[0] >= 0].tolist())
                        recall.append(len(found & set(truth.tolist())) / len(truth))
            print(
                f"| {share:.1%} | {len(allowed):,} | {p50_ms(times['exact']):.1f} "
                f"| {p50_ms(times['flat']):.1f} | {p50_ms(times['hnsw']):.1f} "
                f"| {statistics.fmean(recall):.3f} |"
            )


if __name__ == "__main__":
    prepare_process()
    main()
