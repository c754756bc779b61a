"""Ranking over one index snapshot, in named stages, and the decision whether it answers.

1. :func:`qa_bot.query.analyse` reads the question once (terms, typos, unknown words, names).
2. :func:`candidates`: the nearest passages by cosine and the best by BM25, from the store.
3. :func:`hand_scored`: ``w * cosine + (1 - w) * bm25 / max(bm25)`` plus the answer-kind and
   "Who is X?" bonuses (linear fusion keeps the size of each signal, which reciprocal rank
   fusion throws away; ``benchmarks/bench_retrieval.py`` compares the two).
4. :func:`rerank_and_decide`: the learned ranker re-orders the best of them and the learned
   decision says whether they answer (:mod:`qa_bot.ranker`, :mod:`qa_bot.decision`); the
   passage reader reads the best of those (:mod:`qa_bot.read_stage`) and its logits join both;
   an optional cross-encoder re-orders them instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qa_bot.answer_types import AnswerType, Definition
from qa_bot.article_asked import ArticleAskedModel
from qa_bot.decision import Verdict, decide, decide_about, learned_decision
from qa_bot.embedding import Embedder
from qa_bot.features import candidate_features, first_sentence_terms, question_features, share
from qa_bot.filters import SearchFilters
from qa_bot.models import Chunk, Hit, Span, overlaps
from qa_bot.query import Query, analyse
from qa_bot.query_adapter import QueryAdapter, open_adapter
from qa_bot.quote_choice import QuoteModel
from qa_bot.ranker import CrossEncoderReranker, LearnedRanker
from qa_bot.read_stage import Ranked, read_in_steps, rescored, to_read
from qa_bot.reader import PassageReader, open_reader, reader_dir
from qa_bot.settings import RetrievalSettings
from qa_bot.store_api import Candidates, IndexView
from qa_bot.text import fold, terms

#: How many windows either side of the best hit are fetched for growing the first quote.
CONTEXT_REACH = 3

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retrieval:
    hits: list[Hit]
    coverage: float
    answerable: bool
    query_terms: list[str] = field(default_factory=list)
    reason: str = ""
    #: The windows around the best hit (same article, a few sentences either side), by id:
    #: what the first quote may grow into when the answer spills past its window.
    context: dict[int, Chunk] = field(default_factory=dict)
    #: The question's terms with their IDF, for choosing the sentences to quote.
    weights: dict[str, float] = field(default_factory=dict)
    #: Question terms the index does not hold, and the indexed terms they were read as.
    corrections: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Names in the question that no article mentions (why it was declined).
    unknown_names: tuple[str, ...] = ()
    #: The kind of answer the question's wording asks for ("how fast": a speed), if it says.
    expected: AnswerType | None = None
    #: The question's analysis, as every stage read it.
    query: Query | None = None


@dataclass(frozen=True)
class Rankers:
    """The learned stages and an optional cross-encoder, loaded once by the service."""

    learned: LearnedRanker | None = None
    cross: CrossEncoderReranker | None = None
    #: The packaged passage reader's export, read with the learned stages only.
    reader: PassageReader | None = None
    #: The query adapter for the embedding model, naming more passages for the reader.
    adapter: QueryAdapter | None = None
    #: The quote model, choosing the sentences of the first quote.
    quote: QuoteModel | None = None
    #: The reading of questions about the article itself (its date, outlet, headline).
    about: ArticleAskedModel | None = None


def load_rankers(
    settings: RetrievalSettings,
    embedder: Embedder,
    index_dir: Path | None = None,
    threads: int = 0,
) -> Rankers:
    """The learned ranker, when chosen and trained for ``embedder``'s model, the configured
    cross-encoder, and the export in ``index_dir`` of the reader ``settings.reader`` names
    (beside the learned ranker only), with the query adapter that names it more passages.
    Learned weights for another model are left unused: their embedding features would mean
    nothing (the hand-made stages rank instead)."""
    learned = None
    if settings.ranker == "learned":
        candidate = LearnedRanker.load(settings.ranker_path)
        if candidate.fits(embedder.model_id):
            learned = candidate
    cross = CrossEncoderReranker(settings.reranker) if settings.reranker else None
    reader = None
    if learned is not None and settings.reader is not None and index_dir is not None:
        reader = open_reader(index_dir, settings.reader, threads=threads)
    # Read even when no reader will use it: a wrong file is reported, not silently ignored.
    adapter = open_adapter(settings.query_adapter, embedder.model_id, embedder.dimension)
    quote = QuoteModel.load(settings.quote_model) if settings.quote_model is not None else None
    about = ArticleAskedModel.load(settings.about_model) if settings.about_model else None
    adapted = adapter if settings.adapter_reads else None
    return Rankers(learned, cross, reader, adapted, quote, about)


def say_if_unexported(rankers: Rankers, settings: RetrievalSettings, index_dir: Path) -> None:
    """A reader the settings name with no export yet (a new or retrained one before ``qa-bot
    index``) leaves questions to the learned ranker alone, worse and otherwise silently: say so
    when the rankers load for a question (not while indexing, which exports it)."""
    trained = settings.reader
    if rankers.learned is None or rankers.reader is not None or trained is None:
        return
    if not reader_dir(index_dir, trained).is_dir():
        logger.warning(
            "the reader in %s is not exported into %s yet (qa-bot index exports it); "
            "questions are answered without it meanwhile",
            trained,
            index_dir,
        )


def retrieve(
    snapshot: IndexView,
    question: str,
    query_vector: np.ndarray,
    settings: RetrievalSettings,
    *,
    filters: SearchFilters | None = None,
    extra_terms: Sequence[str] = (),
    boost_articles: Sequence[str] = (),
    ignore_terms: Sequence[str] = (),
    avoid: Sequence[Span] = (),
    limit: int = 30,
    rankers: Rankers | None = None,
) -> Retrieval:
    """Rank passages for a question and decide whether they answer it, in named stages: analyse
    the question, gather candidates, score by hand, rerank (learned or cross-encoder), decide.

    ``extra_terms`` and ``boost_articles`` carry a conversation's context into a follow-up:
    the terms join the lexical query at half weight, and the previously cited articles get a
    small bonus, so "when was that?" finds the passage about the previous question's event.
    ``ignore_terms`` are removed from the question (an outlet named only to filter by it).
    ``avoid`` are places already quoted (a follow-up naming something they do not mention),
    left out before the decision. The learned stages see ``rerank_depth`` windows at least.
    """
    query = analyse(
        question,
        snapshot.lexical,
        typo_tolerance=settings.typo_tolerance,
        extra_terms=extra_terms,
        boost_articles=boost_articles,
        ignore_terms=ignore_terms,
        about_model=rankers.about if rankers else None,
        about_threshold=settings.about_threshold,
    )
    q_terms = list(query.terms)
    if snapshot.n_chunks == 0:
        return Retrieval([], 0.0, False, q_terms, "the index is empty", query=query)
    qv = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    pool = candidates(snapshot, query, qv, settings, filters)
    if pool.ids.size == 0:
        return Retrieval([], 0.0, False, q_terms, "no article matches the filters", query=query)
    depth = max(limit, settings.rerank_depth)
    hits, hand = hand_scored(snapshot, query, pool, settings, depth, avoid)
    if not hits:
        return Retrieval([], 0.0, False, q_terms, "nothing matched", query=query)
    hits, verdict = rerank_and_decide(snapshot, query, qv, hits, hand, settings, rankers)
    verdict = _named_by_outlet(verdict, query, filters, settings)
    return Retrieval(
        hits,
        verdict.coverage,
        verdict.answerable,
        q_terms,
        verdict.reason,
        neighbours(snapshot, hits[0]),
        query.weights,
        query.corrections,
        query.unknown_names if settings.decline_unknown_names else (),
        query.expected,
        query,
    )


def candidates(
    snapshot: IndexView,
    query: Query,
    qv: np.ndarray,
    settings: RetrievalSettings,
    filters: SearchFilters | None,
) -> Candidates:
    """The nearest passages by cosine and the best by BM25 (``settings.candidates`` each),
    among those the filters admit; a follow-up's carried-over terms count
    ``context_term_weight`` each."""
    return snapshot.candidates(
        qv,
        query.terms,
        min(settings.candidates, snapshot.n_chunks),
        filters=filters,
        extra_terms=query.context_terms,
        extra_weight=settings.context_term_weight,
    )


def hand_scored(
    snapshot: IndexView,
    query: Query,
    pool: Candidates,
    settings: RetrievalSettings,
    limit: int,
    avoid: Sequence[Span] = (),
) -> tuple[list[Hit], dict[str, np.ndarray]]:
    """The best ``limit`` candidates by the fused score plus the hand-set bonuses, less those
    overlapping ``avoid``, and each bonus's per-hit value (features of the learned ranker)."""
    ids = pool.ids
    chunks = snapshot.chunks([int(i) for i in ids])
    texts = [chunks[int(i)].text for i in ids]
    fused = fuse(pool.dense, pool.lexical, settings)
    if query.terms and (settings.coverage_weight or settings.anchor_weight):
        fused = fused + np.array(
            [
                settings.coverage_weight * share(terms(t), query.weights)
                + settings.anchor_weight * share(first_sentence_terms(t), query.weights)
                for t in texts
            ]
        )
    kind = np.array([query.expected.score(t) if query.expected else 0.0 for t in texts])
    defined = (
        _definition_bonus(query.subject, [chunks[int(i)] for i in ids], settings)
        if query.subject is not None
        else np.zeros(len(ids))
    )
    fused = fused + settings.answer_type_weight * (kind + defined)
    if query.context_articles:
        boosted = set(snapshot.chunk_ids_of(list(query.context_articles)).tolist())
        fused = fused + settings.previous_topic_bonus * np.isin(ids, list(boosted))
    order = np.argsort(-fused, kind="stable")
    if avoid:
        order = order[[not overlaps(chunks[int(ids[i])].place, avoid) for i in order]]
    order = order[:limit]
    metas = snapshot.articles_by_id(sorted({chunks[int(ids[i])].article_id for i in order}))
    hits = [
        Hit(
            chunk_id=int(ids[i]),
            chunk=chunks[int(ids[i])],
            article=metas[chunks[int(ids[i])].article_id],
            score=float(fused[i]),
            dense=float(pool.dense[i]),
            lexical=float(pool.lexical[i]),
        )
        for i in order
    ]
    return hits, {"answer_kind": kind[order], "definition": defined[order]}


def rerank_and_decide(
    snapshot: IndexView,
    query: Query,
    qv: np.ndarray,
    hits: list[Hit],
    hand: dict[str, np.ndarray],
    settings: RetrievalSettings,
    rankers: Rankers | None,
) -> tuple[list[Hit], Verdict]:
    """The learned ranker re-orders the best ``rerank_depth`` hits (a cross-encoder, when
    one is configured, orders them instead), then the learned or the hand-made decision."""
    learned = rankers.learned if rankers else None
    depth = min(settings.rerank_depth, len(hits))
    head, tail = hits[:depth], hits[depth:]
    if learned is None or settings.ranker != "learned":
        verdict = decide(query, hits, settings)
        if rankers and rankers.cross:
            head = _cross_ordered(rankers.cross, query, head)
        return head + tail, _named(verdict, query, settings)
    rows = candidate_features(query, head, snapshot, qv, {k: v[:depth] for k, v in hand.items()})
    logits = learned.candidates.logits(rows)
    order = np.argsort(-logits, kind="stable")
    head = [rescored(head[i], float(logits[i])) for i in order]
    if query.about is not None or _names_headline(query, head[0]):
        # A question about the article itself ("when was it published", "what does the
        # article “...” say") is answered by its date line or its own passages, and the
        # answer model never saw one; the evidence rule counts the article's title, outlet
        # and date as covered.
        verdict = decide_about(query, head, settings)
    else:
        asked = question_features(query, head, logits[order], rows[order])
        answer_logit = float(learned.answer.logits(asked[None, :])[0])
        reader, topic, tuned = rankers.reader if rankers else None, None, False
        if reader is not None:
            adapter = rankers.adapter if rankers else None
            positions = to_read(snapshot, qv, head, settings, adapter)
            ranked = Ranked(head, logits[order], answer_logit, asked)
            read = read_in_steps(reader, query, ranked, positions, settings)
            head, topic, answer_logit, tuned = read.hits, read.topic, read.answer, read.tuned
        verdict = learned_decision(
            query, head, answer_logit, settings, read=reader is not None, topic=topic, tuned=tuned
        )
    if rankers and rankers.cross:
        head = _cross_ordered(rankers.cross, query, head)
    return head + tail, _named(verdict, query, settings)


#: Shortest headline taken as naming its article when a question quotes it.
MIN_HEADLINE_CHARS = 12


def _names_headline(query: Query, hit: Hit) -> bool:
    """Whether the question quotes the best article's whole headline."""
    title = fold(hit.article.title).strip()
    return len(title) >= MIN_HEADLINE_CHARS and title in fold(query.text)


def _cross_ordered(cross: CrossEncoderReranker, query: Query, hits: list[Hit]) -> list[Hit]:
    scores = cross.scores(query.text, [f"{h.article.title}. {h.chunk.text}" for h in hits])
    order = np.argsort(-scores, kind="stable")
    top = float(scores[order[0]]) if len(order) else 0.0
    return [replace(hits[i], score=float(scores[i] - top + 1.0)) for i in order]


def _named_by_outlet(
    verdict: Verdict, query: Query, filters: SearchFilters | None, settings: RetrievalSettings
) -> Verdict:
    """ "When was the Press TV article published?": a question about the article itself that
    names it by its outlet alone (searched only among that outlet's articles, no word of a
    story left) is answered from the best of them, however little its words cover."""
    if query.about is None or query.terms or filters is None or not filters.outlets:
        return verdict
    outlets = ", ".join(filters.outlets)
    named = Verdict(
        True, verdict.coverage, f"the question names the article by its outlet ({outlets})"
    )
    return _named(named, query, settings)


def _named(verdict: Verdict, query: Query, settings: RetrievalSettings) -> Verdict:
    """A question naming someone or something no article mentions is declined, and the
    reason says who: an article that never names Putin cannot say what he said."""
    if settings.decline_unknown_names and query.unknown_names:
        names = ", ".join(f"“{n}”" for n in query.unknown_names)
        return replace(verdict, answerable=False, reason="the articles never mention " + names)
    return verdict


def _definition_bonus(
    subject: Definition, chunks: Sequence[Chunk], settings: RetrievalSettings
) -> np.ndarray:
    """1 for the windows that answer "Who is X?": of a name, the first window of each article
    that names X (where news introduces a person by title); of a title, the windows holding
    it next to a name; of an acronym, ``spelt_out_bonus`` for the windows spelling it out.
    0 for the others."""
    bonus = np.zeros(len(chunks))
    if subject.spelt_out is not None:
        # Spelt out, an acronym is the answer itself, not a hint of where it is.
        for j, chunk in enumerate(chunks):
            bonus[j] = settings.spelt_out_bonus * bool(subject.spelt_out.search(chunk.text))
        return bonus
    if subject.beside_name is not None:
        for j, chunk in enumerate(chunks):
            bonus[j] = bool(subject.beside_name.search(chunk.text))
        return bonus
    wanted = set(terms(subject.subject))
    if not wanted:  # "Who is He?": nothing to look for
        return bonus
    first: dict[str, int] = {}
    for j, chunk in enumerate(chunks):
        if wanted <= set(terms(chunk.text)):
            seen = first.get(chunk.article_id)
            if seen is None or chunk.start < chunks[seen].start:
                first[chunk.article_id] = j
    bonus[list(first.values())] = 1.0
    return bonus


def neighbours(snapshot: IndexView, hit: Hit, reach: int = CONTEXT_REACH) -> dict[int, Chunk]:
    """The windows of the hit's article that start up to ``reach`` sentences before or after.

    Chunk ids of one article are consecutive (in order of their first sentence), so the
    neighbours are one lookup away.
    """
    ids = range(max(0, hit.chunk_id - reach), hit.chunk_id + reach + 1)
    found = snapshot.chunks(list(ids))
    return {i: c for i, c in found.items() if c.article_id == hit.chunk.article_id}


def fuse(dense: np.ndarray, lexical: np.ndarray, settings: RetrievalSettings) -> np.ndarray:
    """One score per candidate from its cosine and its max-normalized BM25 score.

    "linear" keeps how far apart the candidates are on each signal; "rrf" keeps only their
    order (``1 / (k + rank)`` on each side), so a weak lexical match ranked second counts as
    much as a strong one would. Both honour ``dense_weight`` (0: BM25 only, 1: dense only).
    """
    w = settings.dense_weight
    if settings.fusion == "linear":
        return w * dense + (1.0 - w) * lexical
    fused = w * _reciprocal_ranks(dense, settings.rrf_k) + (1.0 - w) * _reciprocal_ranks(
        lexical, settings.rrf_k, zero_is_absent=True
    )
    # Reciprocal ranks are ~1/60: scaled so the best is 1, as with linear fusion, the ranking
    # bonuses added after fusion (answer type, coverage) weigh the same under both.
    top = float(fused.max()) if fused.size else 0.0
    return fused / top if top > 0 else fused


def _reciprocal_ranks(scores: np.ndarray, k: int, *, zero_is_absent: bool = False) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    out = 1.0 / (k + ranks)
    if zero_is_absent:
        out[scores <= 0] = 0.0
    return out


# --- quotes ------------------------------------------------------------------------------------


def near_duplicate(a: str, b: str, threshold: float = 0.7) -> bool:
    """Syndicated copies and overlapping windows: most words in common."""
    wa, wb = set(fold(a).split()), set(fold(b).split())
    if not wa or not wb:
        return False
    return len(wa & wb) / min(len(wa), len(wb)) >= threshold
