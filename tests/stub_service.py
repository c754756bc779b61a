"""A stand-in for :class:`qa_bot.service.QAService` at the edge of the bot: the same methods,
answering from a few canned articles instead of a model and an index, so tests of buttons,
commands and rendering run in milliseconds.

Questions are matched by their words (:data:`RULES`); what the bot passed in (filters,
boosted articles, notes, places to avoid) is recorded in ``calls``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_bot.feedback import FeedbackLog
from qa_bot.filters import SearchFilters
from qa_bot.models import (
    Answer,
    ArticleMeta,
    Citation,
    IndexStatus,
    Passage,
    SourceInfo,
    Span,
)
from qa_bot.passages import speaker_answer
from qa_bot.service import validate_question
from qa_bot.settings import Settings, load_settings
from qa_bot.text import terms

DECLINED = "The articles don't cover this."

RT = ArticleMeta(
    "rt",
    "000_rt.txt",
    "US-led coalition must prove it really wants to separate Al-Nusra Front from rebels – Lavrov",
    "RT",
    dt.date(2016, 9, 24),
    "24 Sep, 2016 01:53",
    None,
    "a" * 64,
)
UN = ArticleMeta(
    "un",
    "003_un.txt",
    "Russia accuses the US of supporting terror groups in Syria",
    None,
    None,
    None,
    None,
    "b" * 64,
)
DAM = ArticleMeta(
    "dam", "dam.txt", "Kessel dam inquiry finds design flaws", None, dt.date(2016, 10, 2), None,
    None, "c" * 64,
)  # fmt: skip

_DAM_SENTENCES = [
    "The inquiry found that the Kessel dam spillway was undersized by forty percent.",
    "Engineers had warned the regional water board about the spillway as early as 2009.",
    "Minutes of the board's meetings show the warnings were noted but never costed.",
    "The contractor said it had built the dam exactly to the approved drawings.",
    "Residents downstream described water reaching the first floor within an hour.",
    "The report recommends rebuilding the spillway before the next flood season.",
]
#: One paragraph of about 6,000 characters: its passage cannot fit one message.
DAM_PARAGRAPH = " ".join(
    f"{sentence} (Section {i + 1}.)" if i % 6 else sentence
    for i, sentence in enumerate(_DAM_SENTENCES * 13)
)

TEXTS = {
    "rt": (
        "Lavrov said the revival of the ceasefire is possible only on a collective basis.\n\n"
        "He spoke to reporters in New York."
    ),
    "un": (
        "The Security Council met at the request of the United States, Britain and France.\n\n"
        "Power called Russia's action in Syria barbarism.\n\n"
        "Russian Ambassador to the UN Vitaly Churkin said peace is almost impossible now."
    ),
    "dam": DAM_PARAGRAPH,
}
ARTICLES = {meta.id: meta for meta in (RT, UN, DAM)}


_SENTENCE = re.compile(r"\S[^\n]*?[.)](?=\s|$)")


def _sentences(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]


@dataclass(frozen=True)
class Rule:
    """Questions holding every one of ``words`` (case-insensitive) are answered with the
    sentences of ``article`` that hold ``quotes``."""

    words: tuple[str, ...]
    article: str
    quotes: tuple[str, ...]


RULES = (
    Rule(("ambassador",), "un", ("Vitaly Churkin",)),
    Rule(("ceasefire",), "rt", ("collective basis",)),
    Rule(("spillway",), "dam", ("forty percent", "as early as 2009", "next flood season")),
    Rule(("meeting", "council"), "un", ("at the request of",)),
    Rule(("council",), "un", ("barbarism",)),
    Rule(("churkin",), "un", ("Vitaly Churkin",)),
)


@dataclass
class StubService:
    """The service's methods over :data:`TEXTS`; ``settings`` are real settings."""

    settings: Settings = field(default_factory=load_settings)
    calls: list[dict[str, Any]] = field(default_factory=list)
    generation: str = "gen-000001"
    #: Readers' votes: the real log, in a folder of its own (made on the first vote).
    feedback: FeedbackLog = field(
        default_factory=lambda: FeedbackLog(
            Path(tempfile.gettempdir()) / f"qa-bot-stub-{uuid.uuid4().hex}" / "feedback.sqlite"
        )
    )

    def check_question(self, question: str) -> str:
        return validate_question(question, self.settings.max_question_chars)

    def ask(
        self,
        question: str,
        *,
        filters: SearchFilters | None = None,
        extra_terms: Sequence[str] = (),
        boost_articles: Sequence[str] = (),
        notes: Sequence[str] = (),
        avoid: Sequence[Span] = (),
    ) -> Answer:
        question = self.check_question(question)
        self.calls.append(
            {"question": question, "filters": filters, "boost_articles": tuple(boost_articles)}
        )
        notes = list(notes)
        if filters is not None and filters.active:
            notes.append(f"Searching only articles {filters.describe()}.")
        citations = self._cite(question, filters, avoid)
        if not citations:
            return Answer(question, False, DECLINED, notes=tuple(notes), generation=self.generation)
        return Answer(question, True, "", citations, tuple(notes), generation=self.generation)

    def _cite(
        self, question: str, filters: SearchFilters | None, avoid: Sequence[Span]
    ) -> tuple[Citation, ...]:
        low = question.casefold()
        for rule in RULES:
            meta = ARTICLES[rule.article]
            if not all(w in low for w in rule.words):
                continue
            if filters is not None and not filters.admits(meta):
                return ()
            found = [self._citation(rule.article, q, n) for n, q in enumerate(rule.quotes, 1)]
            return tuple(c for c in found if c.place not in avoid)
        return ()

    def _citation(self, article: str, words: str, n: int) -> Citation:
        """The sentence of ``article`` that holds ``words``, as quote ``n``."""
        text = TEXTS[article]
        at = text.index(words)
        start, end = next((s, e) for s, e in _sentences(text) if s <= at < e)
        return Citation(n, ARTICLES[article], text[start:end], start, end, 1.0 / n)

    def more(
        self,
        question: str,
        *,
        filters: SearchFilters | None = None,
        shown: Sequence[Span] = (),
        first_n: int = 1,
    ) -> Answer:
        self.calls.append({"more": question, "filters": filters, "shown": tuple(shown)})
        citations = [
            dataclasses.replace(c, n=first_n + i)
            for i, c in enumerate(c for c in self._citation_pool(question) if c.place not in shown)
        ][:3]
        if not citations:
            return Answer(question, False, "No further passages.")
        notes = ("Further passages, less closely matching:",)
        return Answer(question, True, "", tuple(citations), notes)

    def _citation_pool(self, question: str) -> list[Citation]:
        """Every sentence of the article the question's rule points at, in order."""
        low = question.casefold()
        for rule in RULES:
            if all(w in low for w in rule.words):
                text = TEXTS[rule.article]
                return [self._citation(rule.article, text[s:e], 1) for s, e in _sentences(text)]
        return []

    def passage(
        self, article_id: str, start: int, end: int, *, content_hash: str | None = None
    ) -> Passage | None:
        meta = ARTICLES.get(article_id)
        if meta is None or (content_hash is not None and content_hash != meta.content_hash):
            return None
        return Passage(meta, TEXTS[article_id], start, end)

    def speaker(self, question: str, quoted: Span, notes: Sequence[str] = ()) -> Answer | None:
        meta = ARTICLES.get(quoted[0])
        if meta is None:
            return None
        lookback = self.settings.retrieval.speaker_lookback
        said = speaker_answer(question, meta, TEXTS[meta.id], quoted, lookback)
        return dataclasses.replace(said, notes=tuple(notes), generation=self.generation)

    def outlets(self) -> list[str]:
        return sorted({m.outlet for m in ARTICLES.values() if m.outlet})

    def vocabulary(self, article_ids: Iterable[str]) -> frozenset[str]:
        return frozenset(t for a in article_ids for t in terms(TEXTS.get(a, "")))

    def sources(self) -> list[SourceInfo]:
        return [SourceInfo(meta, 3) for meta in ARTICLES.values()]

    def status(self) -> IndexStatus:
        return IndexStatus(
            generation=self.generation,
            built_at="2016-10-03T10:00:00+00:00",
            model_id="stub",
            dense_kind="flat",
            articles=len(ARTICLES),
            chunks=9,
            first_date=dt.date(2016, 9, 24),
            last_date=dt.date(2016, 10, 2),
            outlets=tuple(self.outlets()),
            stale=(),
        )
