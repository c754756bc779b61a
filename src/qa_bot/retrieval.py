"""Hybrid retrieval over one index snapshot, and the decision whether the corpus answers at all.

Dense cosine (names a paraphrase) and BM25 (names, places and numbers the embedding blurs) are
fused linearly: ``w * cosine + (1 - w) * bm25 / max(bm25)``. Linear fusion keeps the size of
each signal, which reciprocal rank fusion throws away; ``benchmarks/bench_retrieval.py``
compares the two.

Whether to answer is decided by *coverage*: the IDF-weighted share of the question's content
words that the best passages contain. The top cosine alone cannot make that call (an on-topic
question the corpus does not answer can score above an answerable one); a question whose rare
words appear nowhere near the best passages is not answered by them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa_bot.models import ArticleMeta, Chunk
from qa_bot.settings import RetrievalSettings
from qa_bot.store import Snapshot
from qa_bot.text import fold, sentence_spans, terms


@dataclass(frozen=True)
class SearchFilters:
    """Restrict a search to some outlets and/or a publication date range (inclusive).

    Articles without a stated full date are excluded by a date filter: we cannot say they fall
    inside it.
    """

    outlets: tuple[str, ...] = ()
    since: dt.date | None = None
    until: dt.date | None = None

    @property
    def active(self) -> bool:
        return bool(self.outlets or self.since or self.until)

    def describe(self) -> str:
        parts = []
        if self.outlets:
            parts.append("outlet " + " or ".join(self.outlets))
        if self.since and self.until:
            parts.append(f"published {self.since} to {self.until}")
        elif self.since:
            parts.append(f"published on or after {self.since}")
        elif self.until:
            parts.append(f"published on or before {self.until}")
        return ", ".join(parts)

    def admits(self, meta: ArticleMeta) -> bool:
        if self.outlets and (meta.outlet or "").casefold() not in {
            o.casefold() for o in self.outlets
        }:
            return False
        if self.since or self.until:
            if meta.date is None:
                return False
            if self.since and meta.date < self.since:
                return False
            if self.until and meta.date > self.until:
                return False
        return True


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    chunk: Chunk
    article: ArticleMeta
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True)
class Retrieval:
    hits: list[Hit]
    coverage: float
    answerable: bool
    query_terms: list[str] = field(default_factory=list)
    reason: str = ""


def outlet_in_question(question: str, outlets: Iterable[str]) -> str | None:
    """The outlet a question names ("according to TASS", "what did RT report"), if any.

    Short all-caps names (RT, AP) must be written in capitals, so "rt" inside a word or the
    English word "art" never counts.
    """
    for outlet in sorted(outlets, key=len, reverse=True):
        flags = 0 if outlet.isupper() and len(outlet) <= 4 else re.IGNORECASE
        if re.search(rf"(?<![\w-]){re.escape(outlet)}(?![\w-])", question, flags):
            return outlet
    return None


def retrieve(
    snapshot: Snapshot,
    question: str,
    query_vector: np.ndarray,
    settings: RetrievalSettings,
    *,
    filters: SearchFilters | None = None,
    extra_terms: Sequence[str] = (),
    boost_articles: Sequence[str] = (),
    ignore_terms: Sequence[str] = (),
    limit: int = 30,
) -> Retrieval:
    """Rank passages for a question and decide whether they answer it.

    ``extra_terms`` and ``boost_articles`` carry a conversation's context into a follow-up:
    the terms join the lexical query at half weight, and the previously cited articles get a
    small bonus, so "when was that?" finds the passage about the previous question's event.
    ``ignore_terms`` are removed from the question (an outlet named only to filter by it).
    """
    ignore = {t for word in ignore_terms for t in terms(word)}
    q_terms = [t for t in terms(question) if t not in ignore]
    context_terms = [t for t in extra_terms if t not in q_terms and t not in ignore]
    n = snapshot.n_chunks
    if n == 0:
        return Retrieval([], 0.0, False, q_terms, "the index is empty")
    allowed = _allowed_ids(snapshot, filters)
    if allowed is not None and allowed.size == 0:
        return Retrieval([], 0.0, False, q_terms, "no article matches the filters")

    qv = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)
    k = min(settings.candidates, n)
    if allowed is None:
        _, d_ids = snapshot.dense.search(qv, k)
        dense_ids = [int(i) for i in d_ids[0] if i >= 0]
    else:
        sims = np.asarray(snapshot.vectors[allowed], dtype=np.float32) @ qv[0]
        top = np.argsort(-sims)[:k]
        dense_ids = [int(allowed[i]) for i in top]

    lex = snapshot.lexical.scores(q_terms)
    if context_terms:
        lex = lex + 0.5 * snapshot.lexical.scores(context_terms)
    if allowed is not None:
        mask = np.zeros(n, dtype=bool)
        mask[allowed] = True
        lex = np.where(mask, lex, 0.0)
    lex_max = float(lex.max()) if lex.size else 0.0
    lex_ids: list[int] = []
    if lex_max > 0:
        top = np.argpartition(-lex, min(k, n - 1))[:k]
        lex_ids = [int(i) for i in top if lex[i] > 0]

    ids = np.array(sorted(set(dense_ids) | set(lex_ids)), dtype=np.int64)
    dense = np.asarray(snapshot.vectors[ids], dtype=np.float32) @ qv[0]
    lexical = lex[ids] / lex_max if lex_max > 0 else np.zeros(len(ids), dtype=np.float32)
    fused = fuse(dense, lexical, settings)
    if boost_articles:
        boosted = set(snapshot.chunk_ids_of(list(boost_articles)).tolist())
        fused = fused + np.array([0.05 if int(i) in boosted else 0.0 for i in ids])
    order = np.argsort(-fused, kind="stable")[:limit]
    chosen = [int(ids[i]) for i in order]
    chunks = snapshot.chunks(chosen)
    metas = snapshot.articles_by_id(sorted({c.article_id for c in chunks.values()}))
    hits = [
        Hit(
            chunk_id=int(ids[i]),
            chunk=chunks[int(ids[i])],
            article=metas[chunks[int(ids[i])].article_id],
            score=float(fused[i]),
            dense=float(dense[i]),
            lexical=float(lexical[i]),
        )
        for i in order
    ]
    if not hits:
        return Retrieval([], 0.0, False, q_terms, "nothing matched")
    answerable, coverage, reason = decide(snapshot, q_terms, hits, settings)
    return Retrieval(hits, coverage, answerable, q_terms, reason)


def fuse(dense: np.ndarray, lexical: np.ndarray, settings: RetrievalSettings) -> np.ndarray:
    """One score per candidate from its cosine and its max-normalized BM25 score.

    "linear" keeps how far apart the candidates are on each signal; "rrf" keeps only their
    order (``1 / (k + rank)`` on each side), so a weak lexical match ranked second counts as
    much as a strong one would. Both honour ``dense_weight`` (0: BM25 only, 1: dense only).
    """
    w = settings.dense_weight
    if settings.fusion == "linear":
        return w * dense + (1.0 - w) * lexical
    return w * _reciprocal_ranks(dense, settings.rrf_k) + (1.0 - w) * _reciprocal_ranks(
        lexical, settings.rrf_k, zero_is_absent=True
    )


def _reciprocal_ranks(scores: np.ndarray, k: int, *, zero_is_absent: bool = False) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    out = 1.0 / (k + ranks)
    if zero_is_absent:
        out[scores <= 0] = 0.0
    return out


def decide(
    snapshot: Snapshot, q_terms: Sequence[str], hits: Sequence[Hit], settings: RetrievalSettings
) -> tuple[bool, float, str]:
    """Whether the best passages answer the question: (answerable, coverage, reason)."""
    if not hits:
        return False, 0.0, "nothing matched"
    coverage = question_coverage(snapshot, q_terms, hits[:3])
    top_dense = max((h.dense for h in hits[:5]), default=0.0)
    if not q_terms:
        return (
            top_dense >= settings.strong_dense,
            coverage,
            "no content words; dense similarity decides",
        )
    answerable = (
        coverage >= settings.min_coverage and top_dense >= settings.min_dense
    ) or top_dense >= settings.strong_dense
    return answerable, coverage, f"coverage {coverage:.2f}, best cosine {top_dense:.2f}"


def question_coverage(snapshot: Snapshot, q_terms: Sequence[str], hits: Sequence[Hit]) -> float:
    """IDF-weighted share of the question's terms found in the passages (and their titles)."""
    unique = list(dict.fromkeys(q_terms))
    if not unique or not hits:
        return 0.0
    found: set[str] = set()
    for hit in hits:
        found.update(terms(hit.chunk.text))
        found.update(terms(hit.article.title))
    weights = [snapshot.lexical.idf(t) for t in unique]
    total = sum(weights)
    return sum(w for t, w in zip(unique, weights, strict=True) if t in found) / total


def _allowed_ids(snapshot: Snapshot, filters: SearchFilters | None) -> np.ndarray | None:
    if filters is None or not filters.active:
        return None
    articles = [s.meta.id for s in snapshot.sources() if filters.admits(s.meta)]
    return snapshot.chunk_ids_of(articles)


# --- quotes ------------------------------------------------------------------------------------


def focus_quote(hit: Hit, text: str, q_terms: Sequence[str]) -> tuple[int, int]:
    """Trim a window to the sentences that bear on the question.

    Trailing sentences that share no word with the question are dropped (the window that
    starts at the answering sentence usually carries a neighbour along for context). The
    leading sentence is kept: ranking already chose the window that starts where it should.
    """
    spans = list(sentence_spans(text, hit.chunk.start, hit.chunk.end))
    if len(spans) <= 1:
        return hit.chunk.start, hit.chunk.end
    wanted = set(q_terms)
    while len(spans) > 1 and not wanted & set(terms(text[spans[-1][0] : spans[-1][1]])):
        spans.pop()
    return spans[0][0], spans[-1][1]


def near_duplicate(a: str, b: str, threshold: float = 0.7) -> bool:
    """Syndicated copies and overlapping windows: most words in common."""
    wa, wb = set(fold(a).split()), set(fold(b).split())
    if not wa or not wb:
        return False
    return len(wa & wb) / min(len(wa), len(wb)) >= threshold
