"""Answers to questions about the article itself: its date, its outlet, its headline.

The question analysis (:mod:`qa_bot.article_asked`) says which part of the article a question
asks for; the best-ranked article is the one it names by its story. What answers is then the
page's own words, quoted as verbatim as any passage: its date line or dateline ("28 Sep, 2016
15:59", "MOSCOW, September 22./TASS/."), the line where the page names its outlet ("Press
TV’s website can also be accessed at..."), or its headline. A page that states no date, or
names no outlet, is said to state none, plainly, with its headline quoted so that the source
line shows which article was meant: a date or a name found elsewhere in the story (a photo
caption's date, a channel someone spoke to) would be a confident wrong answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from qa_bot.models import Citation
from qa_bot.retrieval import Hit, Retrieval
from qa_bot.text import line_end, line_start, sentence_spans

#: Said when the article a question asks the publication date of states none.
NO_DATE = "The article does not state when it was published (date not stated)."
#: Said when the article a question asks the outlet of names none.
NO_OUTLET = "The article does not name the outlet that published it (outlet not stated)."


@dataclass(frozen=True)
class Stated:
    """What the page says of the part asked for: the quotes to put first, and, when the page
    does not state that part, the sentence saying so (the quotes then only name the article)."""

    citations: tuple[Citation, ...]
    not_stated: str | None = None


def stated(retrieval: Retrieval, article_text: Callable[[str], str]) -> Stated | None:
    """The page's own answer to a question about the best article itself; None for a
    question about its story (or when nothing was ranked)."""
    query = retrieval.query
    if query is None or query.about is None or not retrieval.hits:
        return None
    hit = retrieval.hits[0]
    text = article_text(hit.article.id)
    headline = headline_citation(hit, text)
    if query.about == "headline":
        return Stated((headline,)) if headline is not None else None
    if query.about == "date":
        if not hit.article.date_text:
            return Stated((headline or _passage(hit, text),), NO_DATE)
        line = _stated_line(hit, text)
        return Stated((line,)) if line is not None else None
    outlet = hit.article.outlet
    if not outlet:
        return Stated((headline or _passage(hit, text),), NO_OUTLET)
    named = _outlet_named(hit, text, outlet)
    return Stated(tuple(c for c in (named or headline,) if c is not None))


def _citation(hit: Hit, text: str, start: int, end: int) -> Citation:
    return Citation(
        n=1, article=hit.article, quote=text[start:end], start=start, end=end, score=hit.score
    )


def headline_citation(hit: Hit, text: str) -> Citation | None:
    """The headline as the page prints it (a title from metadata.toml may not be there)."""
    at = text.find(hit.article.title)
    return _citation(hit, text, at, at + len(hit.article.title)) if at >= 0 else None


def _passage(hit: Hit, text: str) -> Citation:
    return _citation(hit, text, hit.chunk.start, hit.chunk.end)


def _stated_line(hit: Hit, text: str) -> Citation | None:
    """The page's date line or dateline: "28 Sep, 2016 15:59", "MOSCOW, September 22./TASS/."."""
    span = hit.article.stated_span
    return _citation(hit, text, *span) if span is not None else None


def _outlet_named(hit: Hit, text: str, outlet: str) -> Citation | None:
    """Where the page names its own ``outlet``: its dateline when that does ("/TASS/."), or
    else the sentence of the first line naming it ("Press TV’s website can also be accessed
    at the following alternate addresses:")."""
    line = _stated_line(hit, text)
    if line is not None and outlet in line.quote:
        return line
    found = re.search(rf"(?<!\w){re.escape(outlet)}(?!\w)", text)
    if found is None:
        return None
    start = line_start(text, found.start())
    end = line_end(text, found.end())
    for a, b in sentence_spans(text, start, end):
        if a <= found.start() < b:
            return _citation(hit, text, a, b)
    return _citation(hit, text, start, end)
