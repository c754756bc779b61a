"""The embedded store (FAISS + BM25) against Milvus, in the same run, with the same vectors.

Two measurements:

* ``eval``: ``qa-bot eval``'s judgement (:func:`qa_bot.evaluation.evaluate`) of the seeds
  dev set, the held-out set and XQuAD with the Reuters distractors, on both stores. Passage
  and question vectors are embedded once and shared, so any difference is the store's.
* ``speed``: Reuters stories up to ``--passages`` windows: embedding once, then each store's
  build from those vectors, an incremental build after one story changes, warm ``ask``
  latency (p50/p95 over XQuAD questions), and the bytes each store keeps per passage.

Milvus is a milvus-lite server this script starts on 127.0.0.1 (its data under ``--cache``),
or any server given with ``--milvus-uri``.

    python benchmarks/bench_store.py eval --sets seeds heldout xquad
    python benchmarks/bench_store.py speed --passages 10000
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_bot.chunking import chunk_article
from qa_bot.corpus import parse_article
from qa_bot.embedding import Embedder, ProgressCallback, SentenceTransformerEmbedder
from qa_bot.evaluation import EvalQuestion, evaluate, load_questions
from qa_bot.indexer import update_index
from qa_bot.runtime import prepare_process
from qa_bot.service import QAService
from qa_bot.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))


class SharedVectors:
    """The real model behind a cache of vectors by text: both stores get the same numbers."""

    def __init__(self, inner: Embedder, path: Path):
        self._inner = inner
        self._path = path
        self._cache: dict[str, np.ndarray] = {}
        if path.is_file():  # vectors of an earlier run (the same model): kept across runs
            with np.load(path) as data:
                self._cache = {k: data[k] for k in data.files}
        self.seconds = 0.0
        self.embedded = 0

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed(
        self, texts: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = list(
            dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self._cache)
        )
        if missing:
            started = time.perf_counter()
            for text, vector in zip(missing, self._inner.embed(missing), strict=True):
                self._cache[hashlib.sha1(text.encode()).hexdigest()] = vector
            self.seconds += time.perf_counter() - started
            self.embedded += len(missing)
            if len(missing) > 8:  # a build, not a question
                np.savez(self._path, **self._cache)
        if progress is not None:
            progress(len(texts))
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        return np.stack([self._cache[k] for k in keys]).astype(np.float32)


@contextlib.contextmanager
def milvus(uri: str | None, folder: Path) -> Iterator[str]:
    if uri:
        yield uri
        return
    from tests.milvus_server import MilvusLiteServer

    folder.mkdir(parents=True, exist_ok=True)
    server = MilvusLiteServer(folder)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


#: The dense index Milvus builds (``--milvus-index``).
MILVUS_INDEX = {"kind": "HNSW"}


def label(backend: str) -> str:
    return "FAISS + BM25" if backend == "faiss" else f"Milvus {MILVUS_INDEX['kind']}"


def settings_for(backend: str, seeds: Path, work: Path, uri: str, name: str) -> Settings:
    store: dict[str, Any] = {"backend": backend}
    if backend == "milvus":
        kind = MILVUS_INDEX["kind"]
        store |= {
            "milvus_uri": uri,
            "milvus_collection": f"bench_{name}_{kind.lower()}",
            "milvus_index": kind,
        }
    return load_settings(
        seeds_dir=seeds,
        index_dir=work / f"{name}-{backend}",
        root_dir=work,
        store=store,
        seeds={"follow_symlinks_outside": True},  # the corpora are linked, not copied
    )


def link_folder(target: Path, sources: Sequence[tuple[str, Path, int | None]]) -> Path:
    """A seeds folder of symlinks, one sub-folder per source (at most ``limit`` files each)."""
    for name, folder, limit in sources:
        sub = target / name
        sub.mkdir(parents=True, exist_ok=True)
        for file in sorted(p for p in folder.iterdir() if p.suffix in {".txt", ".md"})[:limit]:
            link = sub / file.name
            if not link.exists():
                link.symlink_to(file.resolve())
    return target


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- eval -------------------------------------------------------------------------------------


def run_eval(args: argparse.Namespace, shared: SharedVectors, uri: str) -> None:
    work = args.cache
    seeds = SHARED / "seeds"
    sets = {
        "seeds": (seeds, SHARED / "eval" / "dev_questions.jsonl"),
        "heldout": (seeds, REPO / "tests" / "heldout_questions.jsonl"),
        "xquad": (
            link_folder(
                work / "xquad-reuters",
                [
                    ("xquad", SHARED / "external" / "xquad_en" / "articles", None),
                    ("reuters", SHARED / "external" / "reuters21578" / "articles", None),
                ],
            ),
            SHARED / "external" / "xquad_en" / "questions_dev.jsonl",
        ),
    }
    differences: dict[str, list[str]] = {}
    print("| set | store | passages | hit@1 | MRR@10 | answered | 1st quote ok | declined "
          "| verbatim | ask mean ms |\n|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for name in args.sets:
        folder, questions_file = sets[name]
        questions = load_questions(questions_file)
        corpus = "seeds" if folder == seeds else name
        services = {}
        for backend in ("faiss", "milvus"):
            settings = settings_for(backend, folder, work, uri, corpus)
            service = QAService(settings, embedder=shared, query_embedder=shared)
            started = time.perf_counter()
            report = update_index(settings, shared)
            print(
                f"  {name}/{backend}: index {time.perf_counter() - started:.0f} s", file=sys.stderr
            )
            data = evaluate(service, questions).to_json()
            cells = [_fmt(data[key]) for key in METRICS] + [f"{data['latency_mean_ms']:.0f}"]
            print(f"| {name} | {label(backend)} | {report.chunks_total} | {' | '.join(cells)} |")
            services[backend] = service
        differences[name] = compare(services["faiss"], services["milvus"], questions)
    for name, lines in differences.items():
        print(f"\n{name}: {lines[0]}")
        for line in lines[1:]:
            print(f"  - {line}")


def compare(faiss: QAService, milvus: QAService, questions: Sequence[EvalQuestion]) -> list[str]:
    """How many questions get the same answer from both stores (quotes, their places, the
    decision), and for the others whether the dense candidates differed (the ANN index) or
    only their order (equal scores)."""
    same = 0
    notes = []
    for q in questions:
        a, b = faiss.ask(q.question), milvus.ask(q.question)
        if [(c.article.path, c.start, c.end) for c in a.citations] == [
            (c.article.path, c.start, c.end) for c in b.citations
        ] and a.answered == b.answered:
            same += 1
            continue
        ra, rb = faiss.search(q.question), milvus.search(q.question)
        ids_a = {h.chunk_id for h in ra.hits} if ra else set()
        ids_b = {h.chunk_id for h in rb.hits} if rb else set()
        why = "other candidates" if ids_a != ids_b else "same candidates, another order"
        first = [x.citations[0].article.path if x.citations else "declined" for x in (a, b)]
        notes.append(f"{q.question!r}: {first[0]} / {first[1]} ({why})")
    return [f"{same} of {len(questions)} questions get the same answer", *notes[:8]]


METRICS = (
    "hit_at_1",
    "mrr_at_10",
    "answered_rate",
    "first_quote_answer_rate",
    "abstention_recall",
    "faithfulness",
)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


# -- speed ------------------------------------------------------------------------------------


def reuters_with(passages: int, folder: Path, settings: Settings) -> int:
    """Link Reuters stories into ``folder`` until they hold ``passages`` windows."""
    source = SHARED / "external" / "reuters21578" / "articles"
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in sorted(source.iterdir()):
        if total >= passages:
            break
        text = path.read_text(encoding="utf-8", errors="replace")
        article = parse_article(text, article_id=path.stem, path=path.name, digest="-")
        windows = len(chunk_article(article, settings.chunking))
        if windows:
            (folder / path.name).symlink_to(path.resolve())
            total += windows
    return total


def run_speed(args: argparse.Namespace, shared: SharedVectors, uri: str) -> None:
    work = args.cache / f"speed-{args.passages}"
    seeds = work / "reuters"
    if not seeds.exists():
        reuters_with(args.passages, seeds, load_settings())
    questions = [
        q.question for q in load_questions(SHARED / "external" / "xquad_en" / "questions_dev.jsonl")
    ][: args.questions]
    rows: dict[str, dict[str, Any]] = {}
    for backend in ("faiss", "milvus"):
        settings = settings_for(backend, seeds, work, uri, f"speed{args.passages}")
        before = shared.seconds
        started = time.perf_counter()
        report = update_index(settings, shared, force=True)
        build = time.perf_counter() - started - (shared.seconds - before)
        service = QAService(settings, embedder=shared, query_embedder=shared)
        for q in questions[:5]:
            service.ask(q)
        shared.embed(questions)  # questions embedded once, outside the timings
        ask_ms = []
        for q in questions:
            t0 = time.perf_counter()
            service.ask(q)
            ask_ms.append((time.perf_counter() - t0) * 1000)
        victim = sorted(seeds.iterdir())[0]
        text = victim.read_text(encoding="utf-8", errors="replace")
        victim.unlink()
        victim.write_text(text + "\n\nOne more sentence was added to this story today.\n")
        started = time.perf_counter()
        incremental = update_index(settings, shared)
        incr = time.perf_counter() - started
        victim.unlink()
        victim.symlink_to(
            (SHARED / "external" / "reuters21578" / "articles" / victim.name).resolve()
        )
        rows[backend] = {
            "passages": report.chunks_total,
            "store_build_s": round(build, 1),
            "store_passages_per_s": round(report.chunks_total / build, 0),
            "incremental_s (1 story)": round(incr, 2),
            "incremental_embedded": incremental.chunks_embedded,
            "ask_p50_ms": round(statistics.median(ask_ms), 1),
            "ask_p95_ms": round(float(np.percentile(ask_ms, 95)), 1),
        }
        if backend == "faiss":
            gen = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
            rows[backend]["bytes_per_passage"] = round(size_of(gen) / report.chunks_total)
    rows["milvus"] |= row_bytes(settings_for("milvus", seeds, work, uri, f"speed{args.passages}"))
    # milvus-lite keeps a folder per collection: this corpus's, not the other benchmarks'.
    prefix = settings_for("milvus", seeds, work, uri, f"speed{args.passages}").store
    folders = (args.cache / "milvus" / "data" / "collections").glob(f"{prefix.milvus_collection}_*")
    stored = sum(size_of(f) for f in folders)
    if stored:
        rows["milvus"]["bytes_per_passage"] = round(stored / rows["milvus"]["passages"])
    rate = shared.embedded / max(shared.seconds, 1e-9)
    print(f"embedded in this run (once, shared): {shared.embedded} texts, {rate:.0f}/s")
    print(f"| | FAISS + BM25 | {label('milvus')} (milvus-lite) |\n|---|---|---|")
    for key in dict.fromkeys([*rows["faiss"], *rows["milvus"]]):
        print(f"| {key} | {rows['faiss'].get(key, '–')} | {rows['milvus'].get(key, '–')} |")


def row_bytes(settings: Settings) -> dict[str, Any]:
    """What one passage row holds, field by field (mean bytes as stored, before indexes)."""
    from qa_bot.stores import open_store

    store = open_store(settings)
    view = store.open(settings.retrieval)  # type: ignore[attr-defined]
    fields = ["text", "article_id", "outlet", "sparse"]
    data = view.conn.query_all(view.passages, view.visible, fields)
    n = max(len(data), 1)
    nnz = sum(len(r["sparse"]) for r in data) / n
    return {
        "row: dense vector (384 x 4 B)": view.manifest.dimension * 4,
        "row: sparse vector (words x 8 B)": round(nnz * 8),
        "row: passage text": round(sum(len(str(r["text"]).encode()) for r in data) / n),
        "row: ids, outlet, 7 integers": round(
            sum(len(str(r["article_id"]).encode()) + len(str(r["outlet"]).encode()) for r in data)
            / n
        )
        + 8 * 8,
        "words in the statistics": len(view.lexical.ids),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["eval", "speed"])
    parser.add_argument("--sets", nargs="+", default=["seeds", "heldout", "xquad"])
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qa-bench-store"))
    parser.add_argument("--milvus-uri", default=None)
    parser.add_argument("--milvus-index", default="HNSW", help="HNSW, FLAT, HNSW_SQ, ...")
    args = parser.parse_args(argv)
    MILVUS_INDEX["kind"] = args.milvus_index
    args.cache.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformerEmbedder()
    model.embed(["warm up"])  # loading the model is no store's time
    shared = SharedVectors(model, args.cache / "vectors.npz")
    with milvus(args.milvus_uri, args.cache / "milvus") as uri:
        if args.what == "eval":
            run_eval(args, shared, uri)
        else:
            run_speed(args, shared, uri)
    return 0


if __name__ == "__main__":
    prepare_process()
    raise SystemExit(main())
