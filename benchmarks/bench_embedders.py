"""Compare the embedding backends on this machine: sentence-transformers, ONNX fp32, ONNX int8.

Each measurement runs in a fresh subprocess of this script, so one backend's thread pools and
imports never colour another's, and the cold start is what a user's first question pays.

    python benchmarks/bench_embedders.py [--articles DIR] [--passages 500] [--queries 100]

The passages are read from the Reuters articles where they are; nothing is copied.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ARTICLES = REPO / "../shared/external/reuters21578/articles"
BACKENDS = ("sentence-transformers", "onnx-fp32", "onnx-int8")

COLD_SNIPPET = """
import sys
backend, export_dir = sys.argv[1], sys.argv[2]
if backend == "sentence-transformers":
    from qa_bot.embedding import SentenceTransformerEmbedder
    embedder = SentenceTransformerEmbedder(threads=2)
else:
    from qa_bot.onnx_embedding import OnnxEmbedder
    embedder = OnnxEmbedder(export_dir, threads=2)
embedder.embed(["What did the central bank do with interest rates?"])
"""


def read_corpus(articles: Path, passages: int, queries: int) -> tuple[list[str], list[str]]:
    """Paragraphs of the articles as passages, and their headlines as short queries."""
    if not articles.is_dir():
        raise SystemExit(f"no articles folder at {articles}; pass --articles")
    texts: list[str] = []
    titles: list[str] = []
    for path in sorted(articles.glob("*.txt")):
        title, _, body = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        if len(titles) < queries and title.strip():
            titles.append(title.strip().capitalize() + "?")
        texts.extend(p.strip() for p in body.split("\n\n")[1:] if len(p.strip()) >= 40)
        if len(texts) >= passages and len(titles) >= queries:
            break
    return texts[:passages], titles


def make_embedder(backend: str, export_dirs: dict[str, Path], threads: int):
    if backend == "sentence-transformers":
        from qa_bot.embedding import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(threads=threads)
    from qa_bot.onnx_embedding import OnnxEmbedder

    return OnnxEmbedder(export_dirs[backend], threads=threads)


def worker(spec: dict) -> None:
    """Measure one backend at one thread count; print JSON, save the passage vectors."""
    passages, queries = read_corpus(Path(spec["articles"]), spec["passages"], spec["queries"])
    dirs = {name: Path(path) for name, path in spec["export_dirs"].items()}
    embedder = make_embedder(spec["backend"], dirs, spec["threads"])
    embedder.embed(queries[:3])
    latencies = []
    for query in queries:
        start = time.perf_counter()
        embedder.embed([query])
        latencies.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    vectors = embedder.embed(passages)
    bulk = time.perf_counter() - start
    np.save(spec["vectors"], vectors)
    np.save(spec["vectors"].replace(".npy", "-queries.npy"), embedder.embed(queries))
    print(
        json.dumps(
            {
                "p50_ms": statistics.median(latencies),
                "p95_ms": float(np.percentile(latencies, 95)),
                "passages_per_s": len(passages) / bulk,
            }
        )
    )


def run_worker(spec: dict) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"worker {spec['backend']} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cold_start(backend: str, export_dir: Path, repeats: int) -> float:
    """Median wall time of a fresh interpreter that imports, loads and embeds one question."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", COLD_SNIPPET, backend, str(export_dir)],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def export_all(model: str, work: Path, *, reuse: bool) -> tuple[dict[str, Path], dict[str, float]]:
    from qa_bot.onnx_embedding import OnnxExportError, load_export_config
    from qa_bot.onnx_export import export_onnx

    dirs, seconds = {}, {}
    for backend, quantize in (("onnx-fp32", False), ("onnx-int8", True)):
        if reuse:
            try:
                load_export_config(work / backend)
                dirs[backend] = work / backend
                continue
            except OnnxExportError:
                pass
        start = time.perf_counter()
        dirs[backend] = export_onnx(model, work / backend, quantize=quantize)
        seconds[backend] = time.perf_counter() - start
    return dirs, seconds


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=DEFAULT_ARTICLES)
    parser.add_argument("--passages", type=int, default=500)
    parser.add_argument("--queries", type=int, default=100, help="single-query timings")
    parser.add_argument("--cold-repeats", type=int, default=3)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--work-dir", type=Path, help="keep the exports here (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="reuse the exports in --work-dir")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    passages, queries = read_corpus(args.articles.resolve(), args.passages, args.queries)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{len(passages)} passages, {len(queries)} queries, {os.cpu_count()} cores, load {load}")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-embedders-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        export_dirs, export_seconds = export_all(args.model, work, reuse=args.reuse)
        rows = {}
        for backend in BACKENDS:
            folder = export_dirs.get(backend, work)
            row: dict = {"cold_s": cold_start(backend, folder, args.cold_repeats)}
            for threads in (1, 2):
                spec = {
                    "backend": backend,
                    "threads": threads,
                    "articles": str(args.articles.resolve()),
                    "passages": args.passages,
                    "queries": args.queries,
                    "export_dirs": {name: str(path) for name, path in export_dirs.items()},
                    "vectors": str(work / f"{backend}-{threads}.npy"),
                }
                row[threads] = run_worker(spec)
            rows[backend] = row
        print_table(rows, work, export_dirs, export_seconds)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def top5_agreement(queries: np.ndarray, passages: np.ndarray, reference: tuple) -> float:
    """Mean share of each query's top-5 passages that the reference backend also ranks top-5."""
    ours = np.argsort(-(queries @ passages.T), axis=1)[:, :5]
    theirs = np.argsort(-(reference[0] @ reference[1].T), axis=1)[:, :5]
    return float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ours, theirs, strict=True)]))


def print_table(
    rows: dict,
    work: Path,
    export_dirs: dict[str, Path],
    export_seconds: dict[str, float],
) -> None:
    header = (
        f"{'backend':<22}{'cold':>7}{'q p50/p95 t=1':>16}{'q p50/p95 t=2':>16}"
        f"{'bulk t=1':>10}{'bulk t=2':>10}{'cos mean':>10}{'cos min':>9}{'top5':>6}"
        f"{'MB':>6}{'export':>8}"
    )
    reference = (
        np.load(work / "sentence-transformers-2-queries.npy"),
        np.load(work / "sentence-transformers-2.npy"),
    )
    print(header)
    print("-" * len(header))
    for backend, row in rows.items():
        passages = np.load(work / f"{backend}-2.npy")
        cosines = (passages * reference[1]).sum(axis=1)
        top5 = top5_agreement(np.load(work / f"{backend}-2-queries.npy"), passages, reference)
        size = f"{folder_mb(export_dirs[backend]):.0f}" if backend in export_dirs else "-"
        export = f"{export_seconds[backend]:.0f}s" if backend in export_seconds else "-"
        print(
            f"{backend:<22}{row['cold_s']:>6.2f}s"
            f"{row[1]['p50_ms']:>8.1f}/{row[1]['p95_ms']:<5.1f}ms"
            f"{row[2]['p50_ms']:>8.1f}/{row[2]['p95_ms']:<5.1f}ms"
            f"{row[1]['passages_per_s']:>10.1f}{row[2]['passages_per_s']:>10.1f}"
            f"{cosines.mean():>10.4f}{cosines.min():>9.4f}{top5:>6.2f}{size:>6}{export:>8}"
        )
    print(
        "cold: fresh interpreter -> import, load, first vector (median); q: one question, ms; "
        "bulk: passages/s, batch 32;\ncos: vs sentence-transformers on the same passages; "
        "top5: share of each query's top-5 passages that sentence-transformers also ranks top-5"
    )


if __name__ == "__main__":
    main()
