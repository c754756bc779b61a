"""Warm question latency of the shipped path, on the seeds and on a corpus of 10,000 articles,
against embedding the question and searching the store in the same run.

Issue 11 asks for a warm question within 50 ms (p50) on the seeds and within 100 ms on 10,000
articles with the learned stages on, measured against what no ranking can avoid: embedding the
question and fetching its dense and BM25 candidates. Each question is timed both ways, one
after the other, so that both see the same machine; the ratio of the medians is the number to
compare across machines.

The large corpus: every Reuters-21578 story and XQuAD article at hand (2,769 articles), then
numbered variants of them until ``--articles`` (each a story with one sentence added at its end:
the indexer indexes an exact copy once, and the variant's other passages share the original's
vectors, so only one passage each is embedded). The search and the reading see as many
articles and passages as 10,000 distinct ones would give; what the ranking makes of the
near-duplicates is not measured here (``bench_store.py eval`` and ``qa-bot eval`` are).

    python benchmarks/bench_latency.py                    # seeds and 10,000 articles
    python benchmarks/bench_latency.py --articles 3000 --questions 100

Passage vectors are kept in ``--cache`` across runs; the first run embeds about 27,000 passages
(about 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench_store import SHARED, SharedVectors
from qa_bot.embedding import SentenceTransformerEmbedder
from qa_bot.evaluation import load_questions
from qa_bot.indexer import update_index
from qa_bot.runtime import prepare_process
from qa_bot.service import QAService
from qa_bot.settings import Settings, load_settings
from qa_bot.text import terms

REPO = Path(__file__).resolve().parents[1]
#: The real articles of the large corpus, in this order.
SOURCES = (
    SHARED / "external" / "reuters21578" / "articles",
    SHARED / "external" / "xquad_en" / "articles",
)
#: Questions timed on each corpus (as people typed them for the seeds; XQuAD's as written).
QUESTIONS = {
    "seeds": REPO / "tests" / "realistic_questions.jsonl",
    "scale": SHARED / "external" / "xquad_en" / "questions_dev.jsonl",
}
#: Questions asked before timing: the first loads the rankers and the reader.
WARM_UP = 5


#: CPU flags that speed up the int8 matrix products the reader runs (onnxruntime uses them
#: when present): question time is not comparable across machines that differ in them.
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_summary() -> str:
    """The CPU's model and its int8 dot-product flags (from /proc/cpuinfo where there is one),
    printed with every run so that numbers from different machines are not mixed up."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    dot = [flag for flag in INT8_DOT_FLAGS if flag in flags] or ["none"]
    cores = os.cpu_count()
    return f"{model}, {cores} cores, int8 dot products: {'+'.join(dot)}"


def scale_corpus(folder: Path, articles: int) -> int:
    """``folder`` holding ``articles`` articles: the real ones linked, then variants written."""
    real = sorted(p for source in SOURCES for p in source.glob("*.txt"))
    folder.mkdir(parents=True, exist_ok=True)
    for path in real[:articles]:
        link = folder / f"{path.parent.parent.name}-{path.name}"
        if not link.exists():
            link.symlink_to(path.resolve())
    for n in range(max(0, articles - len(real))):
        path = real[n % len(real)]
        copy = folder / f"variant{n // len(real) + 1}-{path.parent.parent.name}-{path.name}"
        if not copy.exists():
            text = path.read_text(encoding="utf-8", errors="replace").rstrip()
            copy.write_text(f"{text}\n\nThis is variant {n + 1} of the story.\n", encoding="utf-8")
    return len(list(folder.glob("*.txt")))


def settings_for(seeds: Path, index: Path) -> Settings:
    # The large corpus's real articles are linked from the shared folder, outside ``seeds``.
    return load_settings(seeds_dir=seeds, index_dir=index, seeds={"follow_symlinks_outside": True})


def search_once(service: QAService, question: str) -> None:
    """What every question costs before any ranking: its vector and its candidates."""
    vector = service.query_embedder.embed([question])[0]
    snapshot = service.snapshot()
    k = min(service.settings.retrieval.candidates, snapshot.n_chunks)
    snapshot.candidates(vector, terms(question), k)


def timed(service: QAService, questions: Sequence[str]) -> dict[str, Any]:
    for question in questions[:WARM_UP]:
        service.ask(question)
        search_once(service, question)
    search_ms, ask_ms = [], []
    for question in questions:
        started = time.perf_counter()
        search_once(service, question)
        middle = time.perf_counter()
        service.ask(question)
        search_ms.append((middle - started) * 1000)
        ask_ms.append((time.perf_counter() - middle) * 1000)
    ask, search = statistics.median(ask_ms), statistics.median(search_ms)
    return {
        "questions": len(questions),
        "ask_p50_ms": round(ask, 1),
        "ask_p95_ms": round(float(np.percentile(ask_ms, 95)), 1),
        "embed_search_p50_ms": round(search, 1),
        "embed_search_p95_ms": round(float(np.percentile(search_ms, 95)), 1),
        "ask_over_embed_search": round(ask / search, 2),
    }


def run(name: str, settings: Settings, shared: SharedVectors, limit: int) -> dict[str, Any]:
    report = update_index(settings, shared)
    # Nothing left to embed: this makes the ONNX query model and the reader's export, so that
    # questions go through what `qa-bot ask` serves with.
    service = QAService(settings)
    service.index()
    questions = [q.question for q in load_questions(QUESTIONS[name])][:limit]
    row = timed(service, questions)
    status = service.status()
    return {"corpus": name, "articles": status.articles, "passages": report.chunks_total, **row}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qa-bench-latency"))
    parser.add_argument("--json", action="store_true", help="one JSON object a corpus")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    shared = SharedVectors(SentenceTransformerEmbedder(), args.cache / "vectors.npz")
    scale = args.cache / f"articles-{args.articles}"
    scale_corpus(scale / "seeds", args.articles)
    corpora = {
        "seeds": settings_for(REPO / "seeds", args.cache / "seeds-index"),
        "scale": settings_for(scale / "seeds", scale / "index"),
    }
    rows = [run(name, s, shared, args.questions) for name, s in corpora.items()]
    cpu = cpu_summary()
    if args.json:
        rows = [{**row, "cpu": cpu} for row in rows]
        print("\n".join(json.dumps(row) for row in rows))
        return 0
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    print(f"\nCPU: {cpu}")
    return 0


if __name__ == "__main__":
    prepare_process()
    raise SystemExit(main())
