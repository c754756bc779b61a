"""Benchmark the vector index types: build time, latency, recall@10, memory, file size.

Three corpora:

* synthetic (default): random unit vectors are a pathological case for approximate search
  (in 384 dimensions every pair is nearly orthogonal, so "nearest" means little), so the
  corpus is built like embeddings: topics, clusters inside topics with a low-dimensional
  spread each (32 directions, not 384), isotropic noise, cluster sizes that vary a lot.
  Queries are data points moved inside their cluster and off it. Its clusters are cleaner
  than real ones: IVF does better here than on real embeddings.
* real (``--real-texts``): the sentences of the shared corpora embedded with the packaged
  all-MiniLM-L6-v2, queried with real questions (22k sentences, 500 questions).
* grown (``--real-texts ... --grow --n N``): N vectors on the segments between each real
  sentence and its 10 nearest real sentences, plus noise, queried with the real questions:
  real geometry at 1M. Its cosine statistics match the real corpus's.

For each configuration: build time, single-query latency p50/p95 (1 thread through
``VectorIndex.search``, and FAISS called directly with its default thread count), recall@10
against exact search, resident memory per vector (a fresh process loading the saved file)
and the file's size.

    python benchmarks/bench_ann.py                 # 1,000,000 x 384, 30-60 minutes
    python benchmarks/bench_ann.py --n 200000      # quicker
    SHARED=../shared; python benchmarks/bench_ann.py \
        --real-texts $SHARED/external/reuters21578/articles $SHARED/external/xquad_en/articles \
        --real-questions $SHARED/external/xquad_en/questions_dev.jsonl \
        $SHARED/eval/dev_questions.jsonl [--grow --n 1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa_bot import vector_index
from qa_bot.runtime import prepare_process
from qa_bot.settings import RetrievalSettings
from qa_bot.vector_index import VectorIndex

K = 10


# -- synthetic corpus -------------------------------------------------------------------------


@dataclass
class Corpus:
    vectors: np.ndarray  # (n, dim) float32, rows L2-normalized
    queries: np.ndarray  # (q, dim) float32, rows L2-normalized


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_corpus(
    n: int,
    dim: int,
    n_queries: int,
    *,
    clusters: int,
    latent: int = 32,
    spread: float = 0.9,
    noise: float = 0.35,
    query_shift: float = 0.5,
    query_noise: float = 0.9,
    seed: int = 0,
) -> Corpus:
    """Clustered, low-intrinsic-dimension unit vectors, and queries near some of them."""
    rng = np.random.default_rng(seed)
    topics = _unit(rng.standard_normal((max(1, clusters // 16), dim)))
    centers = _unit(
        topics[rng.integers(len(topics), size=clusters)]
        + 0.8 * _unit(rng.standard_normal((clusters, dim)))
    )
    # Each cluster spreads along its own `latent` directions, with decaying variance.
    spectrum = 1.0 / np.sqrt(1.0 + np.arange(latent))
    spectrum = (spectrum / np.linalg.norm(spectrum)).astype(np.float32)
    bases = _unit(rng.standard_normal((clusters, latent, dim))) * spectrum[None, :, None]
    weights = rng.lognormal(0.0, 1.0, clusters)
    labels = rng.choice(clusters, size=n, p=weights / weights.sum())

    def sample(cluster: int, m: int) -> np.ndarray:
        z = rng.standard_normal((m, latent), dtype=np.float32)
        iso = rng.standard_normal((m, dim), dtype=np.float32) / np.sqrt(dim)
        return centers[cluster] + spread * (z @ bases[cluster]) + noise * iso

    vectors = np.empty((n, dim), np.float32)
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=clusters))])
    for c in range(clusters):
        rows = order[bounds[c] : bounds[c + 1]]
        if len(rows):
            vectors[rows] = _unit(sample(c, len(rows)))

    # Queries: a data point moved inside its cluster and off it. Real questions sit far from
    # the sentences that answer them (cosine 0.67 to the best of 22k Reuters/XQuAD sentences
    # with all-MiniLM-L6-v2); the defaults put the synthetic ones at about 0.7.
    sources = rng.choice(n, size=n_queries, replace=False)
    queries = np.empty((n_queries, dim), np.float32)
    for i, row in enumerate(sources):
        c = labels[row]
        z = rng.standard_normal((1, latent), dtype=np.float32)
        iso = rng.standard_normal((1, dim), dtype=np.float32) / np.sqrt(dim)
        moved = vectors[row] + query_shift * (z @ bases[c]) + query_noise * iso
        queries[i] = _unit(moved)[0]
    return Corpus(vectors, queries)


def describe(corpus: Corpus, truth_scores: np.ndarray, seed: int = 1) -> str:
    rng = np.random.default_rng(seed)
    a = corpus.vectors[rng.integers(len(corpus.vectors), size=20_000)]
    b = corpus.vectors[rng.integers(len(corpus.vectors), size=20_000)]
    random_pairs = np.einsum("ij,ij->i", a, b)
    return (
        f"cosine: random pairs mean {random_pairs.mean():.3f} (p99 "
        f"{np.percentile(random_pairs, 99):.3f}); query->top1 mean {truth_scores[:, 0].mean():.3f},"
        f" query->top10 mean {truth_scores[:, K - 1].mean():.3f}, "
        f"top1-top10 gap mean {(truth_scores[:, 0] - truth_scores[:, K - 1]).mean():.3f}"
    )


# -- real embeddings -------------------------------------------------------------------------


_EMBED_SCRIPT = """
import json, sys
import numpy as np
from qa_bot.embedding import SentenceTransformerEmbedder
texts = json.load(open(sys.argv[1]))
vectors = SentenceTransformerEmbedder().embed(texts)
np.save(sys.argv[2], vectors)
"""


def embed(texts: list[str], out: Path) -> np.ndarray:
    """Embed with the packaged all-MiniLM-L6-v2 in a fresh process, cached in ``out``.

    Not in this process: it has FAISS's OpenMP runtime loaded, and torch's next to it ran
    4.6x slower here (both spin-wait on 2 cores) unless OMP_WAIT_POLICY=PASSIVE.
    """
    if not out.exists():
        listing = out.with_suffix(".json")
        listing.write_text(json.dumps(texts), encoding="utf-8")
        subprocess.run([sys.executable, "-c", _EMBED_SCRIPT, str(listing), str(out)], check=True)
    return np.load(out)


def real_corpus(
    folders: list[Path], question_files: list[Path], n_queries: int, cache: Path
) -> Corpus:
    """Sentences of the .txt files under ``folders`` and the ``question`` fields of JSONL
    files, embedded with the packaged all-MiniLM-L6-v2 (2-5 minutes for 22k sentences)."""
    sentences: list[str] = []
    for folder in folders:
        for path in sorted(folder.rglob("*.txt")):
            for paragraph in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = re.split(r"(?<=[.!?])\s+", paragraph.strip())
                sentences.extend(p for p in parts if len(p) >= 20)
    questions: list[str] = []
    for file in question_files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.append(json.loads(line)["question"])
    questions = questions[:n_queries]
    start = time.perf_counter()
    vectors = embed(sentences, cache / f"real_sentences_{len(sentences)}.npy")
    queries = embed(questions, cache / f"real_questions_{len(questions)}.npy")
    print(
        f"real corpus: {len(sentences):,} sentences, {len(questions)} questions, "
        f"embedded in {time.perf_counter() - start:.0f} s"
    )
    return Corpus(vectors, queries)


def grow(
    corpus: Corpus, n: int, *, neighbours: int = 10, noise: float = 0.2, seed: int = 0
) -> Corpus:
    """``n`` vectors on the real corpus's neighbourhood graph, with the real queries.

    Each new vector lies on the segment between a real sentence and one of its ``neighbours``
    nearest real sentences, plus a little isotropic noise: the geometry of real embeddings,
    at a size no embedded corpus here reaches.
    """
    real = corpus.vectors
    knn = faiss.IndexFlatIP(real.shape[1])
    knn.add(real)
    _, near = knn.search(real, neighbours + 1)
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        i = rng.integers(len(real), size=m)
        j = near[i, rng.integers(1, neighbours + 1, size=m)]
        t = rng.uniform(0.0, 0.5, size=(m, 1)).astype(np.float32)
        iso = rng.standard_normal((m, real.shape[1]), dtype=np.float32) / np.sqrt(real.shape[1])
        out[start : start + m] = _unit((1 - t) * real[i] + t * real[j] + noise * iso)
    return Corpus(out, corpus.queries)


# -- measurements -----------------------------------------------------------------------------


@dataclass
class Row:
    kind: str
    params: str
    build_s: float
    p50_1t: float
    p95_1t: float
    p50_nt: float
    p95_nt: float
    recall: float
    bytes_per_vector: float
    disk_mb: float


def latency_ms(index: VectorIndex, queries: np.ndarray, threads: int) -> tuple[float, float]:
    """p50 and p95 of single-query searches.

    ``threads=1`` goes through :meth:`VectorIndex.search` (which runs single queries on one
    thread); any other count calls FAISS directly with that many OpenMP threads, to show what
    the one-thread rule saves.
    """
    if threads == 1:

        def search(q: np.ndarray) -> object:
            return index.search(q, K)
    else:
        raw = index.faiss_index

        def search(q: np.ndarray) -> object:
            return raw.search(q[None, :], K)

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        for q in queries[:5]:  # warm-up
            search(q)
        times = np.empty(len(queries))
        for i, q in enumerate(queries):
            start = time.perf_counter()
            search(q)
            times[i] = time.perf_counter() - start
    finally:
        faiss.omp_set_num_threads(previous)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 95) * 1e3)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0]) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


_LOAD_SCRIPT = """
import json, sys, time
from pathlib import Path
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
from qa_bot.settings import RetrievalSettings
from qa_bot.vector_index import VectorIndex
import numpy as np
before = rss()
start = time.perf_counter()
index = VectorIndex.load(Path(sys.argv[1]), RetrievalSettings(), mmap=sys.argv[2] == "1")
load_s = time.perf_counter() - start
after_load = rss()
index.search(np.ones(index.dimension, np.float32) / index.dimension ** 0.5, 10)
print(json.dumps({"load_s": load_s, "rss_load": after_load - before,
                  "rss_search": rss() - before, "n": index.ntotal}))
"""


def measure_load(path: Path, mmap: bool = False) -> dict[str, float]:
    """Load time and resident memory growth in a fresh process (no allocator leftovers)."""
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(path), "1" if mmap else "0"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def measure(
    index: VectorIndex,
    kind: str,
    params: str,
    build_s: float,
    corpus: Corpus,
    truth: np.ndarray,
    latency_queries: int,
) -> Row:
    _, found = index.search(corpus.queries, K)
    lat_q = corpus.queries[:latency_queries]
    p50_1, p95_1 = latency_ms(index, lat_q, 1)
    p50_n, p95_n = latency_ms(index, lat_q, faiss.omp_get_max_threads())
    return Row(kind, params, build_s, p50_1, p95_1, p50_n, p95_n, recall_at_k(found, truth), 0, 0)


def persist(index: VectorIndex, folder: Path, name: str) -> tuple[Path, float, float]:
    path = folder / f"{name}.faiss"
    index.save(path)
    loaded = measure_load(path)
    return path, loaded["rss_load"] / index.ntotal, path.stat().st_size / 2**20


def print_table(rows: list[Row], threads: int) -> None:
    header = (
        f"| index | params | build s | p50 ms 1T | p95 ms 1T | p50 ms {threads}T raw | "
        f"p95 ms {threads}T raw | recall@10 | B/vector | disk MB |"
    )
    print(header)
    print("|" + "---|" * 10)
    for r in rows:
        build = f"{r.build_s:.1f}" if r.build_s >= 0 else '"'
        mem = f"{r.bytes_per_vector:.0f}" if r.bytes_per_vector else '"'
        disk = f"{r.disk_mb:.0f}" if r.disk_mb else '"'
        print(
            f"| {r.kind} | {r.params} | {build} | {r.p50_1t:.2f} | {r.p95_1t:.2f} | "
            f"{r.p50_nt:.2f} | {r.p95_nt:.2f} | {r.recall:.3f} | {mem} | {disk} |"
        )
    sys.stdout.flush()


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="corpus size")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500, help="queries for recall/latency")
    parser.add_argument(
        "--flat-latency-queries", type=int, default=100, help="exact search is slow at 1M"
    )
    parser.add_argument("--clusters", type=int, default=0, help="default: n // 300")
    parser.add_argument(
        "--query-shift", type=float, default=0.5, help="query offset inside its cluster"
    )
    parser.add_argument(
        "--query-noise", type=float, default=0.9, help="query offset off the cluster"
    )
    parser.add_argument("--hnsw-m", type=int, nargs="*", default=[16, 32])
    parser.add_argument(
        "--ef-construction", type=int, nargs="*", default=[0], help="0: the module's rule"
    )
    parser.add_argument("--ef-search", type=int, nargs="*", default=[32, 64, 128, 256])
    parser.add_argument(
        "--ivf-lists-per-sqrt-n", type=int, nargs="*", default=[1, 4], help="nlist = x*sqrt(n)"
    )
    parser.add_argument("--nprobe", type=int, nargs="*", default=[8, 16, 32, 64, 128])
    parser.add_argument("--dir", type=Path, default=None, help="where to write the index files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--real-texts",
        type=Path,
        nargs="*",
        default=[],
        help="instead of synthetic vectors, embed the sentences of these folders' .txt files",
    )
    parser.add_argument(
        "--grow",
        action="store_true",
        help="with --real-texts: make --n vectors between real sentences and their neighbours",
    )
    parser.add_argument(
        "--real-questions", type=Path, nargs="*", default=[], help="JSONL files with 'question'"
    )
    args = parser.parse_args(argv)

    threads = faiss.omp_get_max_threads()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench_ann_"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.real_texts:
        corpus = real_corpus(args.real_texts, args.real_questions, args.queries, folder)
        if args.grow:
            corpus = grow(corpus, args.n, seed=args.seed)
            print(f"grown to {args.n:,} vectors along the real sentences' 10-NN graph")
    else:
        clusters = args.clusters or max(10, args.n // 300)
        start = time.perf_counter()
        corpus = make_corpus(
            args.n,
            args.dim,
            args.queries,
            clusters=clusters,
            query_shift=args.query_shift,
            query_noise=args.query_noise,
            seed=args.seed,
        )
        print(f"corpus: {clusters} clusters, made in {time.perf_counter() - start:.1f} s")
    n, dim = corpus.vectors.shape
    print(f"faiss {faiss.__version__}, {threads} threads, n={n:,} dim={dim}")
    run(corpus, args, folder, threads)


def bench_approximate(
    corpus: Corpus,
    truth: np.ndarray,
    settings: RetrievalSettings,
    name: str,
    knob: str,
    values: list[int],
    label: Callable[[VectorIndex, int], str],
    args: argparse.Namespace,
    folder: Path,
    threads: int,
) -> list[Row]:
    """Build one approximate index, then measure it at each value of its search-time knob
    (HNSW efSearch, IVF nprobe); size and build time go on the first row."""
    start = time.perf_counter()
    index = VectorIndex.build(corpus.vectors, settings)
    build_s = time.perf_counter() - start
    path, per_vector, disk = persist(index, folder, name)
    path.unlink()
    rows = []
    for i, value in enumerate(values):
        index.configure(settings.model_copy(update={knob: value}))
        row = measure(
            index, index.kind, label(index, value), build_s if i == 0 else -1,
            corpus, truth, args.queries,
        )  # fmt: skip
        if i == 0:
            row.bytes_per_vector, row.disk_mb = per_vector, disk
        rows.append(row)
        print_table(rows[-1:], threads)
    del index
    gc.collect()
    return rows


def run(corpus: Corpus, args: argparse.Namespace, folder: Path, threads: int) -> None:
    """Build and measure every configuration asked for, printing rows as they come."""
    rows: list[Row] = []
    exact = RetrievalSettings(exact_search_limit=len(corpus.vectors))
    start = time.perf_counter()
    flat = VectorIndex.build(corpus.vectors, exact)
    build_s = time.perf_counter() - start
    truth_scores, truth = flat.search(corpus.queries, K)
    print(describe(corpus, truth_scores))
    row = measure(flat, "flat", "-", build_s, corpus, truth, args.flat_latency_queries)
    path, row.bytes_per_vector, row.disk_mb = persist(flat, folder, "flat")
    rows.append(row)
    mapped = measure_load(path, mmap=True)
    plain = measure_load(path)
    print(
        f"flat load: {plain['load_s']:.2f} s read, RSS +{plain['rss_load'] / 2**20:.0f} MB; "
        f"{mapped['load_s']:.3f} s mmap, RSS +{mapped['rss_load'] / 2**20:.0f} MB after load, "
        f"+{mapped['rss_search'] / 2**20:.0f} MB (page cache, shared) after one search"
    )
    path.unlink()
    del flat
    gc.collect()
    print_table(rows, threads)

    module_rule = vector_index.ef_construction
    for m in args.hnsw_m:
        for efc in args.ef_construction:
            vector_index.ef_construction = (lambda _m, e=efc: e) if efc else module_rule
            rows.extend(
                bench_approximate(
                    corpus,
                    truth,
                    RetrievalSettings(exact_search_limit=0, ann="hnsw", hnsw_m=m),
                    f"hnsw{m}",
                    "hnsw_ef_search",
                    args.ef_search,
                    lambda index, ef, m=m: (
                        f"M={m} efC={index.faiss_index.hnsw.efConstruction} efS={ef}"
                    ),
                    args,
                    folder,
                    threads,
                )
            )
    vector_index.ef_construction = module_rule

    for per_sqrt in args.ivf_lists_per_sqrt_n:
        vector_index.IVF_LISTS_PER_SQRT_N = per_sqrt
        rows.extend(
            bench_approximate(
                corpus,
                truth,
                RetrievalSettings(exact_search_limit=0, ann="ivf"),
                f"ivf{per_sqrt}",
                "ivf_nprobe",
                args.nprobe,
                lambda index, nprobe: f"nlist={index.faiss_index.nlist} nprobe={nprobe}",
                args,
                folder,
                threads,
            )
        )

    print()
    print_table(rows, threads)


if __name__ == "__main__":
    prepare_process()
    main()
