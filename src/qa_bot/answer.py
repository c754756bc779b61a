"""Compose an answer from ranked passages: verbatim quotes, each with its source.

The bot never writes prose of its own about the articles: the answer *is* the quotes. That
keeps every statement checkable, and makes declining the only honest alternative.

The first quote is the best window, grown by at most a sentence or two where the evidence
points: neighbouring windows of the same article that also rank near the top, then the
sentence after it (answers tend to follow the sentence that matches the question), then the
one before, as long as the quote stays within ``max_quote_chars`` and three sentences.
Further quotes are single windows from other passages that score close to the best one.

Two things of the page other than its story can come first, quoted as verbatim as the rest:
the page's own date line or dateline, for a question about when or by whom the article was
published; and the headline, when it answers a what/which/who question better than any
sentence of the best window.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from qa_bot.answer_types import AnswerType, about_the_article
from qa_bot.models import Answer, Chunk, Citation
from qa_bot.query import speaker
from qa_bot.retrieval import Hit, Retrieval, near_duplicate
from qa_bot.settings import RetrievalSettings
from qa_bot.text import apart, reads_as_prose, sentence_spans, terms

NOT_COVERED = "The articles don't cover this."

#: A further citation must score at least this share of the best one: several articles that
#: support the answer are all cited, weak neighbours are not.
RELATIVE_FLOOR = 0.8

#: Top hits whose windows may be merged into the first quote.
MERGE_DEPTH = 5

#: A quote is at most this many sentences.
MAX_SENTENCES = 3

#: Share of the question a headline must hold to be quoted as the answer.
HEADLINE_COVERAGE = 0.75
_WHAT_WHICH_WHO = re.compile(r"^\W*(?:what|which|who)\b", re.IGNORECASE)


def compose(
    question: str,
    retrieval: Retrieval,
    article_text: Callable[[str], str],
    settings: RetrievalSettings,
    *,
    notes: Sequence[str] = (),
) -> Answer:
    """The answer to show: verbatim quotes of the best passages, each cited, or a decline
    saying what the articles do cover. Quotes are cut from ``article_text`` (the stored text)
    so that every one is verbatim."""
    if not retrieval.answerable or not retrieval.hits:
        return decline(question, retrieval, notes=notes)
    if _asks_unstated_date(retrieval):
        return _unstated_date(question, retrieval, article_text, notes)
    stated = _stated_citation(question, retrieval.hits, article_text)
    citations = [stated] if stated is not None else []
    weights = pivot_weights(question, retrieval.weights)
    headline = None if citations else _headline_citation(question, retrieval, weights, article_text)
    citations = _quoted_passages(retrieval, article_text, settings, weights, citations)
    if headline is not None:
        citations = [replace(c, n=i + 1) for i, c in enumerate([headline, *citations])]
    body = "\n\n".join(f"“{' '.join(c.quote.split())}” [{c.n}]" for c in citations)
    return Answer(
        question=question,
        answered=True,
        text=body,
        citations=tuple(citations),
        notes=tuple(notes),
    )


def _quoted_passages(
    retrieval: Retrieval,
    article_text: Callable[[str], str],
    settings: RetrievalSettings,
    weights: dict[str, float],
    citations: list[Citation],
) -> list[Citation]:
    """``citations`` (the page's own date line, if any: no quote of the story) and then the
    best passages: the first grown to the sentences that answer, the others whole windows, up
    to ``top_k`` of them and ``max_answer_chars``, none repeating another."""
    citations = list(citations)
    quoted = len(citations)
    used_chars = 0
    best = retrieval.hits[0].score
    for hit in retrieval.hits:
        if len(citations) - quoted >= settings.top_k:
            break
        if len(citations) > quoted and hit.score < best * RELATIVE_FLOOR:
            break
        if not _has_prose(hit.chunk):
            # A subhead on its own ("Russia's alleged involvement in convoy attack") names a
            # topic and answers nothing: it may rank, it is never quoted.
            continue
        text = article_text(hit.article.id)
        if len(citations) > quoted:
            start, end = hit.chunk.start, hit.chunk.end
        else:
            start, end = first_quote(
                hit,
                retrieval.hits,
                retrieval.context,
                text,
                settings.max_quote_chars,
                weights,
                retrieval.expected,
            )
        quote = text[start:end]
        if _overlaps(hit, start, end, citations) or any(
            near_duplicate(quote, c.quote) for c in citations
        ):
            continue
        if len(citations) > quoted and used_chars + len(quote) > settings.max_answer_chars:
            continue
        n = len(citations) + 1
        citations.append(Citation(n, hit.article, quote, start, end, score=hit.score))
        used_chars += len(quote)
    return citations


#: How much the words naming who said it count when choosing the sentence to quote.
SPEAKER_WEIGHT = 0.5


def pivot_weights(question: str, weights: Mapping[str, float]) -> dict[str, float]:
    """The question's term weights for choosing the sentence to quote, with the speaker's
    name discounted: in "What did Samantha Power say Russia and Assad do instead of pursuing
    peace?" the answer is the sentence about Russia and Assad; news names the speaker once,
    often in the sentence after a quote ("..., Samantha Power said"), which the quote may
    still take in as a neighbour."""
    said_by = speaker(question)
    if said_by is None:
        return dict(weights)
    speaker_terms = set(terms(said_by))
    speaker_terms |= {"say", "said", "tell", "told"}
    return {t: w * SPEAKER_WEIGHT if t in speaker_terms else w for t, w in weights.items()}


def _headline_citation(
    question: str,
    retrieval: Retrieval,
    weights: Mapping[str, float],
    article_text: Callable[[str], str],
) -> Citation | None:
    """The best article's headline, when it answers a what/which/who question better than any
    sentence of the best window: "What does Russia accuse the US of doing in Syria?" is
    answered by "Russia accuses the US of supporting terror groups in Syria", which no body
    sentence says. The headline must hold most of the question (``HEADLINE_COVERAGE``); "why"
    and "how" questions are never answered by one."""
    if not _WHAT_WHICH_WHO.match(question) or not retrieval.hits:
        return None
    hit = retrieval.hits[0]
    text = article_text(hit.article.id)
    title = hit.article.title
    at = text.find(title)
    total = sum(weights.values())
    if at < 0 or total <= 0:
        return None
    headline = _coverage(text, (at, at + len(title)), weights) / total
    window = max(
        (_coverage(hit.chunk.text, span, weights) for span in sentence_spans(hit.chunk.text)),
        default=0.0,
    )
    if headline < HEADLINE_COVERAGE or headline <= window / total:
        return None
    return Citation(
        n=1, article=hit.article, quote=title, start=at, end=at + len(title), score=hit.score
    )


#: Said when the article a question asks the publication date of states none.
NO_DATE = "The article does not state when it was published (date not stated)."


def _asks_unstated_date(retrieval: Retrieval) -> bool:
    """A question about when the best article was published, of a page that states no date:
    a date found inside it (a photo caption's, another event's) is not its publication date."""
    query = retrieval.query
    return bool(
        query is not None and query.about == "date" and not retrieval.hits[0].article.date_text
    )


def _unstated_date(
    question: str,
    retrieval: Retrieval,
    article_text: Callable[[str], str],
    notes: Sequence[str],
) -> Answer:
    """The plain answer that the page states no date: its headline quoted, so the source line
    (which says "date not stated") names the article meant; or, when the headline is not in
    the page (a title from metadata.toml), the passage that matched."""
    hit = retrieval.hits[0]
    text = article_text(hit.article.id)
    at = text.find(hit.article.title)
    start, end = (at, at + len(hit.article.title)) if at >= 0 else (hit.chunk.start, hit.chunk.end)
    citation = Citation(
        n=1, article=hit.article, quote=text[start:end], start=start, end=end, score=hit.score
    )
    return Answer(
        question=question,
        answered=True,
        text=f"{NO_DATE}\n\n“{' '.join(citation.quote.split())}” [1]",
        citations=(citation,),
        notes=tuple(notes),
    )


def _stated_citation(
    question: str, hits: Sequence[Hit], article_text: Callable[[str], str]
) -> Citation | None:
    """For a question about the article itself (when it was published, by which outlet), the
    best hit's own date line or dateline, quoted verbatim: "28 Sep, 2016 15:59", "MOSCOW,
    September 22./TASS/.". None for other questions, or when the page states neither."""
    about = about_the_article(question)
    if about is None or not hits:
        return None
    hit = hits[0]
    span = hit.article.stated_span
    if span is None:
        return None
    text = article_text(hit.article.id)
    quote = text[span[0] : span[1]]
    if about == "outlet" and not (hit.article.outlet and hit.article.outlet in quote):
        return None  # the date line does not name the outlet: the sources line does
    return Citation(
        n=1, article=hit.article, quote=quote, start=span[0], end=span[1], score=hit.score
    )


def first_quote(
    hit: Hit,
    hits: Sequence[Hit],
    context: Mapping[int, Chunk],
    text: str,
    limit: int,
    weights: Mapping[str, float] | None = None,
    expected: AnswerType | None = None,
) -> tuple[int, int]:
    """The span of the first citation, built around the sentence that matches the question.

    The region is the best window plus the windows of the same article that overlap it and
    also rank near the top. Its pivot is the sentence where the reader found the answer
    (``hit.answer_at``), or else the one covering the most of the question (IDF-weighted):
    a paraphrase shares few words with its answer. The quote is the pivot, then the sentence
    after it (answers tend to follow the sentence that matches the question), then the one
    before, then the second one after, while the quote stays within ``limit`` characters and
    three sentences. Only sentences of the article's body are used (first sentences of its
    windows), never page furniture.
    """
    start, end = hit.chunk.start, hit.chunk.end
    for other in hits[1:MERGE_DEPTH]:
        same = other.article.id == hit.article.id
        if same and other.chunk.start <= end and other.chunk.end >= start:
            start, end = min(start, other.chunk.start), max(end, other.chunk.end)
    chunks = [hit.chunk, *context.values(), *(h.chunk for h in hits[1:MERGE_DEPTH])]
    own = list(sentence_spans(text, hit.chunk.start, hit.chunk.end))
    sentences = sorted(
        {_first_sentence(c) for c in chunks if c.article_id == hit.chunk.article_id} | set(own)
    )
    sentences = [s for s in sentences if _is_prose(text, *s)] or sentences
    region = [i for i, s in enumerate(sentences) if start <= s[0] and s[1] <= end]
    if not region:
        return hit.chunk.start, hit.chunk.end
    weights = weights or {}
    read = _read_sentence(hit.answer_at, own)
    held = [i for i in region if sentences[i] == read]
    pivot = (
        held[0] if held else max(region, key=lambda i: (_coverage(text, sentences[i], weights), -i))
    )
    chosen = [pivot]
    for i in _growth(pivot, sentences, text, expected):
        if not 0 <= i < len(sentences) or len(chosen) >= MAX_SENTENCES:
            continue
        lo = min(sentences[j][0] for j in [*chosen, i])
        hi = max(sentences[j][1] for j in [*chosen, i])
        if hi - lo <= limit and _contiguous([*chosen, i], sentences, text):
            chosen.append(i)
    return min(sentences[j][0] for j in chosen), max(sentences[j][1] for j in chosen)


def _read_sentence(at: int | None, own: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The sentence of the hit's window (``own``) where the reader's answer span starts
    (``at``, an article offset), if any."""
    if at is None:
        return None
    return next((s for s in own if s[0] <= at < s[1]), None)


def _growth(
    pivot: int, sentences: Sequence[tuple[int, int]], text: str, expected: AnswerType | None
) -> tuple[int, ...]:
    """The sentences to add to the pivot, in order: the one after, the one before, the second
    one after; or, when the question asks for a kind of answer ("how fast") that the pivot
    lacks, first towards the nearest sentence holding it."""
    default = (pivot + 1, pivot - 1, pivot + 2)
    if expected is None or expected.strict.search(text[slice(*sentences[pivot])]):
        return default
    for step in (1, -1, 2, -2):
        j = pivot + step
        if 0 <= j < len(sentences) and expected.strict.search(text[slice(*sentences[j])]):
            return (
                (pivot + 1, pivot + 2, pivot - 1) if step > 0 else (pivot - 1, pivot - 2, pivot + 1)
            )
    return default


def _contiguous(picked: Sequence[int], sentences: Sequence[tuple[int, int]], text: str) -> bool:
    """Picked sentences follow each other in the article: no body sentence skipped, and
    nothing but blank space between them (no promo line, photo credit or subhead)."""
    ordered = sorted(picked)
    return all(
        b == a + 1 and not apart(text, sentences[a][1], sentences[b][0])
        for a, b in itertools.pairwise(ordered)
    )


def _coverage(text: str, span: tuple[int, int], weights: Mapping[str, float]) -> float:
    found = set(terms(text[span[0] : span[1]]))
    return sum(w for t, w in weights.items() if t in found)


def _first_sentence(chunk: Chunk) -> tuple[int, int]:
    span = next(sentence_spans(chunk.text), (0, len(chunk.text)))
    return chunk.start + span[0], chunk.start + span[1]


def _has_prose(chunk: Chunk) -> bool:
    return any(_is_prose(chunk.text, *span) for span in sentence_spans(chunk.text))


def _is_prose(text: str, start: int, end: int) -> bool:
    return reads_as_prose(text[start:end])


def _count_sentences(text: str, start: int, end: int) -> int:
    return sum(1 for _ in sentence_spans(text, start, end))


def decline(question: str, retrieval: Retrieval | None, *, notes: Sequence[str] = ()) -> Answer:
    """The plain "not covered" reply, with the nearest topics the corpus does cover."""
    suggestions: list[str] = []
    if retrieval is not None:
        for hit in retrieval.hits:
            if hit.article.title not in suggestions:
                suggestions.append(hit.article.title)
            if len(suggestions) == 2:
                break
    return Answer(
        question=question,
        answered=False,
        text=NOT_COVERED,
        notes=tuple(notes),
        suggestions=tuple(suggestions),
    )


def _overlaps(hit: Hit, start: int, end: int, citations: Sequence[Citation]) -> bool:
    return any(
        c.article.id == hit.article.id and start < c.end and c.start < end for c in citations
    )
