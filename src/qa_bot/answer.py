"""Compose an answer from ranked passages: verbatim quotes, each with its source.

The bot never writes prose of its own about the articles: the answer *is* the quotes. That
keeps every statement checkable, and makes declining the only honest alternative.

The first quote is cut from the best window, with the windows of the same article that also
rank near the top: its sentences are chosen by the learned quote model
(:mod:`qa_bot.quote_choice`: the sentence most likely to hold the answer, grown towards the
likelier neighbour) or, without one, by the hand order (the reader's sentence, then the one
after, the one before), as long as the quote stays within ``max_quote_chars`` and three
sentences. Further quotes are single windows from other passages that score close to the
best one.

Two things of the page other than its story can come first, quoted as verbatim as the rest:
the page's own date line, outlet or headline, for a question about the article itself
(:mod:`qa_bot.article_answer`); and the headline, when it answers a what/which/who question
better than any sentence of the best window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from qa_bot.answer_types import AnswerType
from qa_bot.article_answer import headline_citation, stated
from qa_bot.models import Answer, Chunk, Citation, Span, overlaps, quoted_text
from qa_bot.query import speaker
from qa_bot.quote_choice import (
    QuoteModel,
    Sentences,
    choose,
    coverage,
    grow,
    quote_sentences,
    sentence_rows,
)
from qa_bot.retrieval import Hit, Retrieval, near_duplicate
from qa_bot.settings import RetrievalSettings
from qa_bot.speakers import asks_speaker, named_speaker, sentences_in, speaker_of
from qa_bot.text import reads_as_prose, sentence_spans, terms

NOT_COVERED = "The articles don't cover this."

#: Top hits whose windows may be merged into the first quote.
MERGE_DEPTH = 5

#: A quote is at most this many sentences.
MAX_SENTENCES = 3

_WHAT_WHICH_WHO = re.compile(r"^\W*(?:what|which|who)\b", re.IGNORECASE)


def compose(
    question: str,
    retrieval: Retrieval,
    article_text: Callable[[str], str],
    settings: RetrievalSettings,
    *,
    notes: Sequence[str] = (),
    quote_model: QuoteModel | None = None,
) -> Answer:
    """The answer to show: verbatim quotes of the best passages, each cited, or a decline
    saying what the articles do cover. Quotes are cut from ``article_text`` (the stored text)
    so that every one is verbatim; ``quote_model`` chooses the first quote's sentences (the
    hand order without one)."""
    if not retrieval.answerable or not retrieval.hits:
        return decline(question, retrieval, notes=notes)
    found = stated(retrieval, article_text)
    if found is not None and found.not_stated is not None:
        # Said as a note too: the fronts show an answer's notes and quotes, not its text.
        return Answer(
            question=question,
            answered=True,
            text=f"{found.not_stated}\n\n{quoted_text(found.citations)}",
            citations=found.citations,
            notes=(*notes, found.not_stated),
        )
    citations = list(found.citations) if found is not None else []
    weights = pivot_weights(question, retrieval.weights, settings.speaker_name_weight)
    headline = None
    if not citations:
        headline = _headline_citation(
            question, retrieval, weights, article_text, settings.headline_share
        )
    first = len(citations)
    citations = _quoted_passages(
        question, retrieval, article_text, settings, weights, citations, quote_model
    )
    citations = _with_speaker(question, citations, first, article_text, settings, weights)
    if headline is not None:
        citations = [replace(c, n=i + 1) for i, c in enumerate([headline, *citations])]
    body = quoted_text(citations)
    return Answer(
        question=question,
        answered=True,
        text=body,
        citations=tuple(citations),
        notes=tuple(notes),
    )


def _quoted_passages(
    question: str,
    retrieval: Retrieval,
    article_text: Callable[[str], str],
    settings: RetrievalSettings,
    weights: dict[str, float],
    citations: list[Citation],
    quote_model: QuoteModel | None,
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
        if len(citations) > quoted and hit.score < best * settings.further_quote_share:
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
                question=question,
                model=quote_model,
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


def _with_speaker(
    question: str,
    citations: list[Citation],
    first: int,
    article_text: Callable[[str], str],
    settings: RetrievalSettings,
    weights: Mapping[str, float],
) -> list[Citation]:
    """``citations`` with, before the first quoted passage, the sentence naming whose words
    it quotes, when the question asks who said them and the quote does not say ("...," he
    said): the article names them in another sentence (:mod:`qa_bot.speakers`), and the name
    is the answer. The words are those of the quote's sentence sharing most of the question."""
    if settings.speaker_lookback <= 0 or len(citations) <= first:
        return citations
    if not asks_speaker(question) or speaker(question) is not None:  # "what did lavrov say"
        return citations
    quoted = citations[first]
    if named_speaker(quoted.quote) is not None:
        return citations
    text = article_text(quoted.article.id)
    spans = list(sentence_spans(text))
    inside = sentences_in(spans, quoted.start, quoted.end)
    if not inside:
        return citations
    words = max(inside, key=lambda i: coverage(text[slice(*spans[i])], weights))
    asked = set(terms(question))
    span = speaker_of(text, spans, words, settings.speaker_lookback, asked)
    if span is None:
        return citations
    place: Span = (quoted.article.id, *span)
    if overlaps(place, [quoted.place]):
        return citations
    said = Citation(0, quoted.article, text[slice(*span)], *span, score=quoted.score)
    # A later passage holding the same sentence would repeat it: the sentence stands for it.
    rest = [c for c in citations[first + 1 :] if not overlaps(place, [c.place])]
    ordered = [*citations[:first], said, quoted, *rest]
    return [replace(c, n=i + 1) for i, c in enumerate(ordered)]


def pivot_weights(question: str, weights: Mapping[str, float], discount: float) -> dict[str, float]:
    """The question's term weights for choosing the sentence to quote, with the speaker's
    name counted ``discount`` times (``retrieval.speaker_name_weight``): in "What did Samantha
    Power say Russia and Assad do instead of pursuing peace?" the answer is the sentence about
    Russia and Assad; news names the speaker once, often in the sentence after a quote ("...,
    Samantha Power said"), which the quote may still take in as a neighbour."""
    said_by = speaker(question)
    if said_by is None:
        return dict(weights)
    speaker_terms = set(terms(said_by))
    speaker_terms |= {"say", "said", "tell", "told"}
    return {t: w * discount if t in speaker_terms else w for t, w in weights.items()}


def _headline_citation(
    question: str,
    retrieval: Retrieval,
    weights: Mapping[str, float],
    article_text: Callable[[str], str],
    share: float,
) -> Citation | None:
    """The best article's headline, when it answers a what/which/who question better than any
    sentence of the best window: "What does Russia accuse the US of doing in Syria?" is
    answered by "Russia accuses the US of supporting terror groups in Syria", which no body
    sentence says. The headline must hold ``share`` of the question's words at least; "why"
    and "how" questions are never answered by one."""
    if not _WHAT_WHICH_WHO.match(question) or not retrieval.hits:
        return None
    hit = retrieval.hits[0]
    headline = headline_citation(hit, article_text(hit.article.id))
    total = sum(weights.values())
    if headline is None or total <= 0:
        return None
    held = coverage(headline.quote, weights) / total
    window = max(
        (coverage(hit.chunk.text[a:b], weights) for a, b in sentence_spans(hit.chunk.text)),
        default=0.0,
    )
    if held < share or held <= window / total:
        return None
    return headline


def first_quote(
    hit: Hit,
    hits: Sequence[Hit],
    context: Mapping[int, Chunk],
    text: str,
    limit: int,
    weights: Mapping[str, float] | None = None,
    expected: AnswerType | None = None,
    *,
    question: str = "",
    model: QuoteModel | None = None,
) -> tuple[int, int]:
    """The span of the first citation, built around the sentence that answers the question.

    The region is the best window plus the windows of the same article that overlap it and
    also rank near the top; the quote may grow past it into the neighbouring windows' first
    sentences. With ``model`` (:mod:`qa_bot.quote_choice`), the learned sentence scores pick
    the sentence to start from and the side to grow to. Without, the hand order: the sentence
    where the reader found the answer (``hit.answer_at``), or else the one covering the most of
    the question (IDF-weighted), then the one after it (answers tend to follow the sentence
    that matches the question), the one before, the second one after. Either way the quote
    stays within ``limit`` characters and three sentences.
    """
    sentences = quote_region(hit, hits, context, text)
    if sentences is None:
        return hit.chunk.start, hit.chunk.end
    weights = weights or {}
    if model is not None:
        scores = model.scores(sentence_rows(question, sentences, weights, expected))
        return choose(sentences, scores, limit, MAX_SENTENCES)
    return hand_choice(sentences, weights, expected, limit)


def quote_region(
    hit: Hit, hits: Sequence[Hit], context: Mapping[int, Chunk], text: str
) -> Sentences | None:
    """The sentences the first quote may hold: those of ``hit``'s window and of the top
    windows of the same article overlapping it (where it starts), and the first sentences of
    the windows around them (where it may grow)."""
    start, end = hit.chunk.start, hit.chunk.end
    for other in hits[1:MERGE_DEPTH]:
        same = other.article.id == hit.article.id
        if same and other.chunk.start <= end and other.chunk.end >= start:
            start, end = min(start, other.chunk.start), max(end, other.chunk.end)
    chunks = [*context.values(), *(h.chunk for h in hits[1:MERGE_DEPTH])]
    return quote_sentences(hit.chunk, (start, end), chunks, text, hit.answer_at)


def hand_choice(
    sentences: Sentences,
    weights: Mapping[str, float],
    expected: AnswerType | None,
    limit: int,
) -> tuple[int, int]:
    """The hand order: the reader's sentence, else the one covering most of the question,
    grown by :func:`_growth`'s order."""
    pivot = sentences.read
    if pivot is None:
        pivot = max(sentences.region, key=lambda i: (coverage(sentences.sentence(i), weights), -i))
    order = [i for i in _growth(pivot, sentences, expected) if 0 <= i < len(sentences.spans)]
    return grow(sentences, pivot, lambda chosen: order, limit, MAX_SENTENCES)


def _growth(pivot: int, sentences: Sentences, expected: AnswerType | None) -> tuple[int, ...]:
    """The sentences to add to the pivot, in order: the one after, the one before, the second
    one after; or, when the question asks for a kind of answer ("how fast") that the pivot
    lacks, first towards the nearest sentence holding it."""
    default = (pivot + 1, pivot - 1, pivot + 2)
    if expected is None or expected.strict.search(sentences.sentence(pivot)):
        return default
    for step in (1, -1, 2, -2):
        j = pivot + step
        if 0 <= j < len(sentences.spans) and expected.strict.search(sentences.sentence(j)):
            return (
                (pivot + 1, pivot + 2, pivot - 1) if step > 0 else (pivot - 1, pivot - 2, pivot + 1)
            )
    return default


def _has_prose(chunk: Chunk) -> bool:
    return any(_is_prose(chunk.text, *span) for span in sentence_spans(chunk.text))


def _is_prose(text: str, start: int, end: int) -> bool:
    return reads_as_prose(text[start:end])


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
    return overlaps((hit.article.id, start, end), [c.place for c in citations])
