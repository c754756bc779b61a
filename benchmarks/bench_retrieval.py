"""Compare retrieval variants side by side on the seed dev set and on XQuAD with distractors.

Variants: BM25 only, dense only, hybrid with reciprocal rank fusion, hybrid with linear fusion
with the coverage bonuses and without them (the default). Each is run through the same answer path
as ``qa-bot ask`` and judged by :mod:`qa_bot.evaluation`; questions are embedded once and the
vectors reused by every variant, so the table compares ranking and quoting, not model speed
(``qa-bot eval`` measures latency).

Sets:

* ``seeds``: ``../shared/eval/dev_questions.jsonl`` over ``../shared/seeds``;
* ``heldout``: ``tests/heldout_questions.jsonl`` over the same seeds: questions written without
  looking at the answers, a share of them paraphrased, and on-topic ones the seeds do not answer;
* ``xquad``: ``../shared/external/xquad_en/questions_dev.jsonl`` over the 48 XQuAD articles
  indexed together with the 2,721 Reuters-21578 stories as distractors.

Abstention is checked on three kinds of questions that must be declined: the dev set's
unanswerable ones, each set's questions asked of the other set's index (out of corpus), and
XQuAD questions with their gold article removed from the ranking (on-topic, not answered).

    python benchmarks/bench_retrieval.py                      # both sets, all variants
    python benchmarks/bench_retrieval.py --sets seeds --json  # one set, machine-readable

Indexes are built once under ``--cache`` (default /tmp/qa-bench) and reused: the indexer is
incremental, so a second run starts in seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_bot.embedding import Embedder, ProgressCallback
from qa_bot.evaluation import EvalQuestion, Report, doc_matches, evaluate, load_questions
from qa_bot.query import analyse
from qa_bot.retrieval import candidates, hand_scored, rerank_and_decide
from qa_bot.runtime import prepare_process
from qa_bot.service import QAService
from qa_bot.settings import load_settings

SHARED = Path(__file__).resolve().parents[2] / "shared"

#: Retrieval settings of each variant, on top of the configured ones ("hybrid-linear" is the
#: default); "+coverage" adds the ranking bonuses for covering the question's words. The single
#: signals drop the answer-type bonus too.
VARIANTS: dict[str, dict[str, Any]] = {
    "bm25": {"dense_weight": 0.0, "answer_type_weight": 0.0},
    "dense": {
        "dense_weight": 1.0,
        "coverage_weight": 0.0,
        "anchor_weight": 0.0,
        "answer_type_weight": 0.0,
    },
    "hybrid-rrf": {"fusion": "rrf"},
    "hybrid-linear+coverage": {"coverage_weight": 0.2, "anchor_weight": 0.1},
    "hybrid-linear": {},
}


#: Questions are embedded one at a time; anything bigger is an index build.
QUESTION_BATCH = 8


class CachedEmbedder:
    """The real embedder behind a per-text cache on disk: each question is embedded once."""

    def __init__(self, inner: Embedder, path: Path):
        self._inner = inner
        self._path = path
        self._cache: dict[str, np.ndarray] = {}
        if path.is_file():
            data = np.load(path)
            self._cache = {k: data[k] for k in data.files}

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed(
        self, texts: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> np.ndarray:
        if len(texts) > QUESTION_BATCH:
            # An index build (the service builds with its query model when that is the same
            # model): passages are not questions, and caching them would bloat the file.
            return self._inner.embed(texts, progress=progress)
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = [t for t, k in zip(texts, keys, strict=True) if k not in self._cache]
        if missing:
            vectors = self._inner.embed(missing)
            for text, vector in zip(missing, vectors, strict=True):
                self._cache[hashlib.sha1(text.encode()).hexdigest()] = vector
            np.savez(self._path, **self._cache)
        return np.stack([self._cache[k] for k in keys])


def link_folder(target: Path, sources: Sequence[tuple[str, Path]]) -> Path:
    """A seeds folder of symlinks, one sub-folder per source (read with
    ``seeds.follow_symlinks_outside``: the corpora are ``../shared``'s)."""
    for name, folder in sources:
        sub = target / name
        sub.mkdir(parents=True, exist_ok=True)
        for file in sorted(folder.iterdir()):
            link = sub / file.name
            if not link.exists():
                link.symlink_to(file.resolve())
    return target


def build_service(seeds: Path, index: Path, cache: Path, overrides: dict[str, Any]) -> QAService:
    base = load_settings(
        seeds_dir=seeds,
        index_dir=index,
        seeds={"follow_symlinks_outside": True},  # the corpora are linked, not copied
    )
    settings = base.model_copy(update={"retrieval": base.retrieval.model_copy(update=overrides)})
    service = QAService(settings)
    real = service.embedder
    service = QAService(settings, embedder=real, query_embedder=CachedEmbedder(real, cache))
    return service


def ensure_index(service: QAService) -> None:
    started = time.perf_counter()
    report = service.ensure_index()
    if report is not None:
        print(
            f"  indexed {report.chunks_total} chunks in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )


def declined_share(service: QAService, questions: Sequence[EvalQuestion]) -> float:
    """Share of questions declined (they must all be: none is answered by this index)."""
    declined = 0
    for q in questions:
        retrieval = service.search(q.question)
        declined += retrieval is None or not retrieval.answerable
    return declined / len(questions) if questions else float("nan")


def declined_without_gold(service: QAService, questions: Sequence[EvalQuestion]) -> float:
    """Share declined when the gold article is taken out of the ranking (on-topic negatives)."""
    snapshot = service.snapshot()
    settings = service.settings.retrieval
    declined = 0
    for q in questions:
        qv = service.query_embedder.embed([q.question])[0]
        query = analyse(q.question, snapshot.lexical, typo_tolerance=settings.typo_tolerance)
        pool = candidates(snapshot, query, qv, settings, None)
        hits, hand = hand_scored(snapshot, query, pool, settings, settings.rerank_depth)
        keep = [
            i for i, h in enumerate(hits) if not any(doc_matches(d, h.article.path) for d in q.docs)
        ]
        if not keep:
            declined += 1
            continue
        _, verdict = rerank_and_decide(
            snapshot,
            query,
            qv,
            [hits[i] for i in keep],
            {name: values[keep] for name, values in hand.items()},
            settings,
            service.rankers,
        )
        declined += not verdict.answerable
    return declined / len(questions) if questions else float("nan")


def row(name: str, report: Report, extra: dict[str, float]) -> dict[str, Any]:
    return {"variant": name, **report.to_json(), **extra}


COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("variant", "variant", str),
    ("hit_at_1", "hit@1", lambda v: f"{v:.3f}"),
    ("hit_at_3", "hit@3", lambda v: f"{v:.3f}"),
    ("mrr_at_10", "MRR@10", lambda v: f"{v:.3f}"),
    ("answered_rate", "answered", lambda v: f"{v:.3f}"),
    ("first_quote_answer_rate", "1st quote ok", lambda v: f"{v:.3f}"),
    ("answered_first_quote_rate", "1st quote ok / answered", lambda v: f"{v:.3f}"),
    ("median_quoted_chars", "median chars", lambda v: f"{v:.0f}"),
    ("declined_unanswerable", "declined: unanswerable", lambda v: f"{v:.3f}"),
    ("declined_other_corpus", "declined: other set", lambda v: f"{v:.3f}"),
    ("declined_gold_removed", "declined: gold removed", lambda v: f"{v:.3f}"),
)


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, rule]
    for r in rows:
        cells = [fmt(r[key]) if r.get(key) is not None else "–" for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["seeds", "heldout", "xquad"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qa-bench"))
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="Override a retrieval setting for every variant: name=value.",
    )
    args = parser.parse_args(argv)
    shared: Path = args.shared
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    common = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.overrides)}

    sets = {
        "seeds": (
            shared / "seeds",
            cache / "seeds-index",
            shared / "eval" / "dev_questions.jsonl",
        ),
        "heldout": (
            shared / "seeds",
            cache / "seeds-index",
            Path(__file__).resolve().parents[1] / "tests" / "heldout_questions.jsonl",
        ),
        "xquad": (
            link_folder(
                cache / "xquad-reuters",
                [
                    ("xquad", shared / "external" / "xquad_en" / "articles"),
                    ("reuters", shared / "external" / "reuters21578" / "articles"),
                ],
            ),
            cache / "xquad-reuters-index",
            shared / "external" / "xquad_en" / "questions_dev.jsonl",
        ),
    }
    questions = {name: load_questions(path) for name, (_, _, path) in sets.items()}
    results: dict[str, list[dict[str, Any]]] = {}
    for set_name in args.sets:
        seeds, index, _ = sets[set_name]
        print(f"== {set_name}", file=sys.stderr)
        # Questions about another corpus: none of them is answered by this index.
        others = [
            q
            for other, qs in questions.items()
            if sets[other][1] != index
            for q in qs
            if not q.unanswerable
        ]
        results[set_name] = []
        for variant in args.variants:
            overrides = {**VARIANTS[variant], **common}
            service = build_service(seeds, index, cache / "question-vectors.npz", overrides)
            ensure_index(service)
            started = time.perf_counter()
            report = evaluate(service, questions[set_name], warmup=False)
            unanswerable = [q for q in questions[set_name] if q.unanswerable]
            answerable = [q for q in questions[set_name] if not q.unanswerable]
            extra = {
                "declined_unanswerable": report.abstention_recall,
                "declined_other_corpus": declined_share(service, others),
                "declined_gold_removed": (
                    declined_without_gold(service, answerable) if set_name == "xquad" else None
                ),
            }
            if not unanswerable:
                extra["declined_unanswerable"] = None
            results[set_name].append(row(variant, report, extra))
            print(
                f"  {variant}: {time.perf_counter() - started:.0f} s, first quote "
                f"{report.first_quote_answer_rate:.3f}",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for set_name, rows in results.items():
            print(f"\n### {set_name}\n")
            print(markdown(rows))
    return 0


if __name__ == "__main__":
    prepare_process()
    raise SystemExit(main())
