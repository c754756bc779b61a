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

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa_bot.answer_types import (
    AnswerType,
    Definition,
    article_words,
    definition,
    expected_answer,
)
from qa_bot.filters import SearchFilters
from qa_bot.models import ArticleMeta, Chunk
from qa_bot.settings import RetrievalSettings
from qa_bot.store_api import IndexView, Lexicon
from qa_bot.text import fold, sentence_spans, terms

#: Coverage that counts as every word of the question (rounding aside).
ALL_WORDS = 1.0 - 1e-9

#: How many windows either side of the best hit are fetched for growing the first quote.
CONTEXT_REACH = 3

#: How much a word carried over from the previous question counts in BM25, against one of
#: the question's own.
CONTEXT_TERM_WEIGHT = 0.5


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
    limit: int = 30,
) -> Retrieval:
    """Rank passages for a question and decide whether they answer it.

    ``extra_terms`` and ``boost_articles`` carry a conversation's context into a follow-up:
    the terms join the lexical query at half weight, and the previously cited articles get a
    small bonus, so "when was that?" finds the passage about the previous question's event.
    ``ignore_terms`` are removed from the question (an outlet named only to filter by it).
    """
    ignore = {t for word in [*ignore_terms, *article_words(question)] for t in terms(word)}
    q_terms = [t for t in terms(question) if t not in ignore]
    corrections: dict[str, tuple[str, ...]] = {}
    if settings.typo_tolerance:
        q_terms, corrections = corrected_terms(snapshot.lexical, q_terms)
    context_terms = [t for t in extra_terms if t not in q_terms and t not in ignore]
    n = snapshot.n_chunks
    if n == 0:
        return Retrieval([], 0.0, False, q_terms, "the index is empty")
    found = snapshot.candidates(
        np.asarray(query_vector, dtype=np.float32).reshape(-1),
        q_terms,
        min(settings.candidates, n),
        filters=filters,
        extra_terms=context_terms,
        extra_weight=CONTEXT_TERM_WEIGHT,
    )
    if found.ids.size == 0:
        return Retrieval([], 0.0, False, q_terms, "no article matches the filters")
    ids, dense, lexical = found.ids, found.dense, found.lexical
    fused = fuse(dense, lexical, settings)
    chunks = snapshot.chunks([int(i) for i in ids])
    if q_terms and (settings.coverage_weight or settings.anchor_weight):
        weights = term_weights(snapshot, q_terms)
        bonus = [
            settings.coverage_weight * coverage(terms(chunks[int(i)].text), weights)
            + settings.anchor_weight * anchor_coverage(chunks[int(i)].text, weights)
            for i in ids
        ]
        fused = fused + np.array(bonus)
    expected = expected_answer(question)
    if expected is not None and settings.answer_type_weight:
        fused = fused + settings.answer_type_weight * np.array(
            [expected.score(chunks[int(i)].text) for i in ids]
        )
    subject = definition(question)
    if subject is not None and settings.answer_type_weight:
        fused = fused + settings.answer_type_weight * _definition_bonus(
            subject, [chunks[int(i)] for i in ids]
        )
    if boost_articles:
        boosted = set(snapshot.chunk_ids_of(list(boost_articles)).tolist())
        fused = fused + np.array([0.05 if int(i) in boosted else 0.0 for i in ids])
    order = np.argsort(-fused, kind="stable")[:limit]
    metas = snapshot.articles_by_id(sorted({chunks[int(ids[i])].article_id for i in order}))
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
    answerable, covered, reason = decide(snapshot, q_terms, hits, settings, subject=subject)
    unknown = unknown_names(question, snapshot.lexical) if settings.decline_unknown_names else []
    # An outlet named to filter by ("According to Press TV, ...") is no topic of the question,
    # and its name is often only in the page furniture that is not indexed.
    ignored = {w.casefold() for name in ignore_terms for w in _SURFACE_WORD.findall(name)}
    unknown = [name for name in unknown if name.casefold() not in ignored]
    if unknown:
        answerable = False
        reason = "the articles never mention " + ", ".join(f"“{n}”" for n in unknown)
    return Retrieval(
        hits,
        covered,
        answerable,
        q_terms,
        reason,
        neighbours(snapshot, hits[0]),
        term_weights(snapshot, q_terms),
        corrections,
        tuple(unknown),
        expected,
    )


#: How many answer-type bonuses the window spelling out an asked-about acronym earns.
SPELT_OUT_BONUS = 3.0


def _definition_bonus(subject: Definition, chunks: Sequence[Chunk]) -> np.ndarray:
    """1 for the windows that answer "Who is X?": of a name, the first window of each article
    that names X (where news introduces a person by title); of a title, the windows holding
    it next to a name; of an acronym, ``SPELT_OUT_BONUS`` for the windows spelling it out.
    0 for the others."""
    bonus = np.zeros(len(chunks))
    if subject.spelt_out is not None:
        # Spelt out, an acronym is the answer itself, not a hint of where it is.
        for j, chunk in enumerate(chunks):
            bonus[j] = SPELT_OUT_BONUS * bool(subject.spelt_out.search(chunk.text))
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


def corrected_terms(
    lexical: Lexicon, q_terms: Sequence[str]
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """The question's terms with each one the index does not hold replaced by the indexed
    terms one typo away, when there are any; and those replacements, by replaced term.

    A misspelt name ("Churkn", "Lavrow") finds nothing in BM25 and, being unseen, weighs the
    most in the coverage that decides whether to answer: left alone it both hides the passage
    and declines the question. The embedding is less thrown by typos, but names are where it
    is weakest.
    """
    out: list[str] = []
    corrections: dict[str, tuple[str, ...]] = {}
    for term in q_terms:
        near = lexical.near_terms(term)
        if near:
            corrections[term] = near
        out.extend(near or (term,))
    return out, corrections


_SURFACE_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
#: Shortest acronym taken for a name ("NATO", "ISSG"; not "SP").
MIN_ACRONYM = 3

#: Words that open the phrase saying what is asked for ("which German city").
_ASKING = frozenset({"which", "what", "whose"})


def unknown_names(question: str, lexical: Lexicon) -> list[str]:
    """Names in the question that no indexed passage holds, even read with a typo fixed.

    A name is a capitalised word past the first (that one is capitalised anyway) or an
    acronym of three letters or more (two-letter ones are too often a question's own
    shorthand: "the SP" for the Scottish Parliament). "What did Putin say about the convoy
    attack?" shares "convoy" and "attack" with the corpus and embeds near it, so coverage and
    cosine together would answer it with passages about the convoy; but a corpus that never
    mentions Putin cannot say what he said.
    """
    found: list[str] = []
    previous = ""
    for i, match in enumerate(_SURFACE_WORD.finditer(question)):
        word, after = match.group(), previous
        previous = word.casefold()
        is_name = len(word) >= MIN_ACRONYM if word.isupper() else i > 0 and word[0].isupper()
        if not is_name or after in _ASKING:
            # "In which German city ...", "Which NATO chief ...": a name inside the asking
            # phrase describes the answer ("Munich", "Stoltenberg"), which an article can name
            # without the describing word; it is not what the question is about.
            continue
        word_terms = terms(word)
        if word_terms and not any(lexical.holds(t) or lexical.near_terms(t) for t in word_terms):
            found.append(word)
    return found


def correction_note(question: str, retrieval: Retrieval) -> str | None:
    """ "Read “Churkn” as “Churkin”.": the misspelt words of the question, as the person wrote
    them, and the words they were read as, as the best passages write them (the index holds
    stems, not words). None when nothing was corrected or no passage shows the word."""
    readings: list[str] = []
    for term, replacements in retrieval.corrections.items():
        written = _surface(question, term)
        found = [w for r in replacements if (w := _surface_in_hits(retrieval.hits, r))]
        if written and found:
            readings.append(f"“{written}” as " + " or ".join(f"“{w}”" for w in found))
    return "Read " + "; ".join(readings) + "." if readings else None


def _surface(text: str, term: str) -> str | None:
    return next((m.group() for m in _SURFACE_WORD.finditer(text) if term in terms(m.group())), None)


def _surface_in_hits(hits: Sequence[Hit], term: str) -> str | None:
    for hit in hits[:10]:
        for text in (hit.chunk.text, hit.article.title):
            if found := _surface(text, term):
                return found
    return None


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


def decide(
    snapshot: IndexView,
    q_terms: Sequence[str],
    hits: Sequence[Hit],
    settings: RetrievalSettings,
    *,
    subject: Definition | None = None,
) -> tuple[bool, float, str]:
    """Whether the best passages answer the question: (answerable, coverage, reason).

    The evidence is ``coverage + evidence_dense_weight * cosine``: coverage is the
    IDF-weighted share of the question's words in the best single passage of the top three
    (with its article's title; pooling several passages would let an off-topic question
    collect its words from unrelated articles), the cosine is the best of the top five. Either
    alone fails: an on-topic question the corpus does not answer can have a higher cosine
    than an answerable one, and a paraphrased answerable question can share few words.

    One passage holding *every* word of the question needs only ``min_dense_all_words`` of
    cosine: "Who is Churkin?" embeds far from any window that names him in passing (0.13
    here), yet the passage naming him is the answer. So does a question asking who or what a
    name is ("What kind of publication is Komsomolskaya Pravda?", ``subject``) of a passage
    naming it: its other words are the question's scaffolding.
    """
    if not hits:
        return False, 0.0, "nothing matched"
    weights = term_weights(snapshot, q_terms)
    best = max(
        (
            coverage(
                [*terms(h.chunk.text), *terms(h.article.title), *_meta_terms(h.article)], weights
            )
            for h in hits[:3]
        ),
        default=0.0,
    )
    top_dense = max((h.dense for h in hits[:5]), default=0.0)
    evidence = best + settings.evidence_dense_weight * top_dense
    reason = f"coverage {best:.2f} + {settings.evidence_dense_weight:g} x cosine {top_dense:.2f}"
    if evidence >= settings.min_evidence and top_dense >= settings.min_dense:
        return True, best, f"{reason} = {evidence:.2f} (needs {settings.min_evidence:g})"
    if best >= ALL_WORDS and top_dense >= settings.min_dense_all_words:
        return (
            True,
            best,
            (
                f"one passage holds every word of the question, and cosine {top_dense:.2f} "
                f"(needs {settings.min_dense_all_words:g})"
            ),
        )
    if subject is not None and subject.is_name and top_dense >= settings.min_dense_all_words:
        wanted = set(terms(subject.subject))
        if wanted and any(wanted <= set(terms(h.chunk.text)) for h in hits[:3]):
            return (
                True,
                best,
                (
                    f"a passage names “{subject.subject}”, whom or what the question asks "
                    f"about, and cosine {top_dense:.2f} (needs {settings.min_dense_all_words:g})"
                ),
            )
    return False, best, f"{reason} = {evidence:.2f} (needs {settings.min_evidence:g})"


def _meta_terms(meta: ArticleMeta) -> list[str]:
    """Words a question may use to point at the article itself rather than its text: the
    outlet and the publication date ("What did RT report on September 24 about ...?")."""
    words = [meta.outlet or "", meta.date_text or ""]
    if meta.date is not None:
        words.append(f"{meta.date:%B} {meta.date.day} {meta.date.year}")
    return terms(" ".join(words))


def term_weights(snapshot: IndexView, q_terms: Sequence[str]) -> dict[str, float]:
    """Each distinct question term with its IDF: rare names and numbers weigh the most."""
    return {t: snapshot.lexical.idf(t) for t in dict.fromkeys(q_terms)}


def coverage(text_terms: Iterable[str], weights: dict[str, float]) -> float:
    """IDF-weighted share of the question's terms that occur in ``text_terms``."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    found = set(text_terms)
    return sum(w for t, w in weights.items() if t in found) / total


def anchor_coverage(window_text: str, weights: dict[str, float]) -> float:
    """How much of the question the window's *first* sentence covers.

    Windows start at every sentence, and the answer is usually in the sentence that matches
    the question or in the one right after it. Of overlapping windows that match equally
    well, the one that starts at the matching sentence therefore holds the answer most often;
    the one that ends with it cuts the answer off.
    """
    first = next(sentence_spans(window_text), None)
    if first is None:
        return 0.0
    return coverage(terms(window_text[first[0] : first[1]]), weights)


# --- quotes ------------------------------------------------------------------------------------


def near_duplicate(a: str, b: str, threshold: float = 0.7) -> bool:
    """Syndicated copies and overlapping windows: most words in common."""
    wa, wb = set(fold(a).split()), set(fold(b).split())
    if not wa or not wb:
        return False
    return len(wa & wb) / min(len(wa), len(wb)) >= threshold
