"""Plain result types shared by the core and every front.

They are frozen so that a cached index, an answer handed to the bot and the JSON written by the CLI
can never drift apart after they were built.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ArticleMeta:
    """What we know about one article, without its text.

    ``date`` is set only when the article (or the maintainer's sidecar) states a full date;
    ``date_text`` is the date exactly as it is written, so that a date without a year is shown
    as such instead of being completed by guesswork. ``stated_span`` is where the page itself
    states that date (its dateline or date line), as a span of the article's text, found when
    the article is indexed (:func:`qa_bot.corpus.stated_span`); None when the page states none.
    """

    id: str
    path: str
    title: str
    outlet: str | None
    date: dt.date | None
    date_text: str | None
    url: str | None
    content_hash: str
    stated_span: tuple[int, int] | None = None

    def date_label(self) -> str:
        """The date as a person should read it: as stated, or plainly not stated."""
        if self.date_text:
            return self.date_text
        if self.date is not None:
            return self.date.isoformat()
        return "date not stated"

    def outlet_label(self) -> str:
        return self.outlet or "outlet unknown"


@dataclass(frozen=True)
class Article:
    """A parsed article: the original text plus the spans of its real content.

    ``text`` is the decoded file, untouched, so any span into it is a verbatim quote. ``body`` lists
    the (start, end) spans of the paragraphs that survived boilerplate cleaning; chunks are cut
    only from these spans.
    """

    meta: ArticleMeta
    text: str
    body: tuple[tuple[int, int], ...]
    #: Where the title, outlet and date came from, as (field, origin) pairs; origin is "page
    #: metadata", "text", "metadata.toml" or "file name" (``qa-bot sources --origins``).
    origins: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return self.meta.id


@dataclass(frozen=True)
class Chunk:
    """A short window of consecutive sentences of one article, the unit we embed and rank.

    ``start``/``end`` index into the article's original text, and ``text`` is exactly that slice.
    """

    article_id: str
    ordinal: int
    start: int
    end: int
    text: str

    @property
    def place(self) -> Span:
        """Where the window stands in the index: (article id, start, end)."""
        return (self.article_id, self.start, self.end)


@dataclass(frozen=True)
class Citation:
    """One quote in an answer, with everything needed to cite it."""

    n: int
    article: ArticleMeta
    quote: str
    start: int
    end: int
    score: float

    @property
    def place(self) -> Span:
        """Where the quote stands in the index: (article id, start, end)."""
        return (self.article.id, self.start, self.end)

    def to_json(self, file: str) -> dict[str, Any]:
        meta = self.article
        return {
            "n": self.n,
            "file": file,
            "title": meta.title,
            "outlet": meta.outlet,
            "date": meta.date.isoformat() if meta.date else None,
            "date_text": meta.date_text,
            "quote": self.quote,
            "score": round(float(self.score), 4),
        }


def quoted_text(citations: Iterable[Citation]) -> str:
    """An answer's text: its quotes, each on one line and numbered as its citation."""
    return "\n\n".join(f"“{' '.join(c.quote.split())}” [{c.n}]" for c in citations)


@dataclass(frozen=True)
class Answer:
    """The reply to one question.

    ``answered`` is False when the corpus does not answer the question; ``citations`` is then
    empty and ``text`` says so plainly. ``notes`` carries user-facing remarks such as
    "taking your previous question into account" or the filters that were applied.
    """

    question: str
    answered: bool
    text: str
    citations: tuple[Citation, ...] = ()
    notes: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = field(default=())
    #: The index generation it was answered from (what readers' feedback records).
    generation: str | None = None


@dataclass(frozen=True)
class CitedPassage:
    """One quote of a rated answer: its article's file, title, outlet and date, and the text."""

    doc: str
    title: str
    outlet: str | None
    date: str | None
    quote: str


@dataclass(frozen=True)
class Rated:
    """An answer as a vote remembers it. ``id`` names the answer (not the reader): votes on
    the same answer replace each other. ``searched`` is the text searched when it was not the
    question alone (a follow-up, with its topic's words)."""

    id: str
    question: str
    answered: bool
    citations: tuple[CitedPassage, ...] = ()
    generation: str | None = None
    searched: str = ""

    @classmethod
    def of(cls, answer: Answer, *, searched: str = "") -> Rated:
        """The answer to remember, under a new id."""
        citations = tuple(
            CitedPassage(
                doc=c.article.path,
                title=c.article.title,
                outlet=c.article.outlet,
                date=c.article.date.isoformat() if c.article.date else c.article.date_text,
                quote=c.quote,
            )
            for c in answer.citations
        )
        searched = searched if searched and searched != answer.question else ""
        return cls(
            uuid.uuid4().hex,
            answer.question,
            answer.answered,
            citations,
            answer.generation,
            searched,
        )

    @property
    def verdict(self) -> str:
        return "answered" if self.answered else "declined"


@dataclass(frozen=True)
class SourceInfo:
    """One line of ``qa-bot sources``: an article and how many chunks it has in the index."""

    meta: ArticleMeta
    chunks: int


#: A quote by its place in the index: (article id, start, end) of the article's text.
Span = tuple[str, int, int]


def overlaps(span: Span, spans: Iterable[Span]) -> bool:
    """Whether ``span`` shares text with any of ``spans`` (same article, overlapping range)."""
    article, start, end = span
    return any(a == article and s < end and start < e for a, s, e in spans)


@dataclass(frozen=True)
class IndexStatus:
    """How fresh the index is and what it was built with (``qa-bot status``, ``/status``)."""

    generation: str
    built_at: str
    model_id: str
    dense_kind: str
    articles: int
    chunks: int
    first_date: dt.date | None
    last_date: dt.date | None
    outlets: tuple[str, ...]
    stale: tuple[str, ...]
    #: Where the index lives ("faiss" or "milvus"), there, and what the engine holds.
    store: str = "faiss"
    location: str = ""
    store_details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Passage:
    """The text around a quote, for "show me more" in the bot: ``text[quote_start:quote_end]``
    is the quote."""

    article: ArticleMeta
    text: str
    quote_start: int
    quote_end: int


@dataclass(frozen=True)
class Hit:
    """A ranked passage: the window, its article, its score and the two raw signals; and
    where the reader found the answer in its article, when it read it and found one."""

    chunk_id: int
    chunk: Chunk
    article: ArticleMeta
    score: float
    dense: float
    lexical: float
    #: Article offset where the reader's best answer span starts (None: not read, or no span
    #: beats "not there" by ``retrieval.quote_span_margin``).
    answer_at: int | None = None

    @property
    def place(self) -> Span:
        """Where the window stands in the index: (article id, start, end)."""
        return self.chunk.place
