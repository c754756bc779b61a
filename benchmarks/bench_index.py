"""Index build and ask latency, on the seeds and on a larger real corpus.

Prints, per corpus: full build time and chunks/s, the raw ``model.encode`` throughput on the
very same texts in the same run (their ratio is what matters: how much the pipeline adds to
the encoder), the incremental rebuild time after changing one file, and warm ``ask`` latency
p50/p95 next to the cost of embedding the question alone.

    python benchmarks/bench_index.py                       # seeds + Reuters (2,721 stories)
    python benchmarks/bench_index.py --reuters-limit 500   # a quicker run

The corpora are read where they are (symlinked into a temporary folder), never copied into the
repository.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from qa_bot.chunking import chunk_article, embedding_text
from qa_bot.corpus import read_article
from qa_bot.embedding import SentenceTransformerEmbedder
from qa_bot.runtime import prepare_process
from qa_bot.seed_files import discover
from qa_bot.service import QAService
from qa_bot.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]


def _link_corpus(source: Path, target: Path, limit: int | None) -> list[Path]:
    target.mkdir(parents=True)
    files = sorted(p for p in source.iterdir() if p.suffix in {".txt", ".md"})[:limit]
    for path in files:
        (target / path.name).symlink_to(path.resolve())
    return files


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def _chunk_texts(seeds: Path, settings: Settings) -> list[str]:
    """The texts a build embeds, to time the encoder alone on them."""
    files, _ = discover(seeds)
    texts: list[str] = []
    for source in files:
        article, _ = read_article(source, None, settings.max_file_bytes)
        if article is not None:
            texts.extend(
                embedding_text(article.meta.title, c.text)
                for c in chunk_article(article, settings.chunking)
            )
    return texts


def _encode_seconds(
    embedder: SentenceTransformerEmbedder, texts: list[str], settings: Settings
) -> float:
    started = time.perf_counter()
    embedder.model.encode(
        texts,
        batch_size=settings.embedding.batch_size,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return time.perf_counter() - started


def bench(
    name: str, seeds: Path, questions: list[str], embedder: SentenceTransformerEmbedder, work: Path
) -> dict[str, object]:
    settings = load_settings(seeds_dir=seeds, index_dir=work / f"{name}-index", root_dir=work)
    service = QAService(settings, embedder=embedder)
    texts = _chunk_texts(seeds, settings)
    # Raw encoding is timed before and after the build, and the build compared with their
    # mean: on this machine a second run of the same work is often 10-20% faster than the
    # first, which would otherwise count against whichever ran first.
    encode_before = _encode_seconds(embedder, texts, settings)

    started = time.perf_counter()
    report = service.index()
    # The first build also exports the ONNX query model (once per model, a few seconds): timed
    # apart, since the ratio to raw encoding is about building the index.
    build_s = report.seconds
    export_s = time.perf_counter() - started - build_s
    chunks = report.chunks_total

    encode_s = (encode_before + _encode_seconds(embedder, texts, settings)) / 2

    # Change one file: replace its link with an edited copy.
    victim = sorted(p for p in seeds.iterdir() if p.is_symlink() or p.is_file())[0]
    content = victim.read_text(encoding="utf-8", errors="replace")
    victim.unlink()
    victim.write_text(
        content + "\n\nOne more sentence was added to this story today.\n", encoding="utf-8"
    )
    started = time.perf_counter()
    incremental = service.index()
    incr_s = time.perf_counter() - started

    # Warm latency.
    for q in questions[:3]:
        service.ask(q)
    ask_ms, embed_ms = [], []
    for q in questions:
        t0 = time.perf_counter()
        service.query_embedder.embed([q])
        t1 = time.perf_counter()
        service.ask(q)
        t2 = time.perf_counter()
        embed_ms.append((t1 - t0) * 1000)
        ask_ms.append((t2 - t1) * 1000)
    return {
        "corpus": name,
        "files": len(report.added),
        "chunks": chunks,
        "build_s": round(build_s, 2),
        "onnx_export_s": round(export_s, 2),
        "chunks_per_s": round(chunks / build_s, 1),
        "encode_only_s": round(encode_s, 2),
        "encode_chunks_per_s": round(len(texts) / encode_s, 1),
        "build_vs_encode": round(build_s / encode_s, 3),
        "incremental_s": round(incr_s, 2),
        "incremental_embedded": incremental.chunks_embedded,
        "incremental_share_of_full": round(incr_s / build_s, 4),
        "ask_p50_ms": round(statistics.median(ask_ms), 1),
        "ask_p95_ms": round(_percentile(ask_ms, 95), 1),
        "embed_question_p50_ms": round(statistics.median(embed_ms), 1),
        "questions": len(questions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--reuters-limit", type=int, default=None)
    parser.add_argument("--skip-reuters", action="store_true")
    parser.add_argument("--json", action="store_true", help="print JSON lines, not a table")
    args = parser.parse_args()

    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        work = Path(tmp)
        dev = args.shared / "eval" / "dev_questions.jsonl"
        seed_questions = [
            json.loads(line)["question"] for line in dev.read_text().splitlines() if line.strip()
        ]
        _link_corpus(REPO / "seeds", work / "seeds", None)
        rows.append(bench("seeds", work / "seeds", seed_questions, embedder, work))
        if not args.skip_reuters:
            reuters = args.shared / "external" / "reuters21578" / "articles"
            linked = _link_corpus(reuters, work / "reuters", args.reuters_limit)
            titles = [p.read_text(encoding="utf-8").splitlines()[0].title() for p in linked[:200:4]]
            rows.append(bench("reuters", work / "reuters", titles, embedder, work))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    keys = list(rows[0])
    width = max(len(k) for k in keys)
    print(f"{'':<{width}}  " + "  ".join(f"{r['corpus']:>12}" for r in rows))
    for key in keys[1:]:
        print(f"{key:<{width}}  " + "  ".join(f"{r[key]!s:>12}" for r in rows))


if __name__ == "__main__":
    prepare_process()
    main()
