"""Compose an answer from ranked passages: verbatim quotes, each with its source.

The bot never writes prose of its own about the articles: the answer *is* the quotes. That
keeps every statement checkable, and makes declining the only honest alternative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qa_bot.models import Answer, Citation
from qa_bot.retrieval import Hit, Retrieval, focus_quote, near_duplicate
from qa_bot.settings import RetrievalSettings

NOT_COVERED = "The articles don't cover this."

#: A further citation must score at least this share of the best one: several articles that
#: support the answer are all cited, weak neighbours are not.
RELATIVE_FLOOR = 0.8


def compose(
    question: str,
    retrieval: Retrieval,
    article_text: Callable[[str], str],
    settings: RetrievalSettings,
    *,
    notes: Sequence[str] = (),
) -> Answer:
    if not retrieval.answerable or not retrieval.hits:
        return decline(question, retrieval, notes=notes)
    citations: list[Citation] = []
    used_chars = 0
    best = retrieval.hits[0].score
    for hit in retrieval.hits:
        if len(citations) >= settings.top_k:
            break
        if citations and hit.score < best * RELATIVE_FLOOR:
            break
        text = article_text(hit.article.id)
        start, end = focus_quote(hit, text, retrieval.query_terms)
        quote = text[start:end]
        if _overlaps(hit, start, end, citations) or any(
            near_duplicate(quote, c.quote) for c in citations
        ):
            continue
        if citations and used_chars + len(quote) > settings.max_answer_chars:
            continue
        citations.append(
            Citation(
                n=len(citations) + 1,
                article=hit.article,
                quote=quote,
                start=start,
                end=end,
                score=hit.score,
            )
        )
        used_chars += len(quote)
    body = "\n\n".join(f"“{' '.join(c.quote.split())}” [{c.n}]" for c in citations)
    return Answer(
        question=question,
        answered=True,
        text=body,
        citations=tuple(citations),
        notes=tuple(notes),
    )


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
