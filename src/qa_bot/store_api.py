"""What the rest of the code asks of an index, whatever engine holds it.

The embedded default is :mod:`qa_bot.store` (FAISS + BM25 + SQLite in generation folders).
Retrieval, answers, the service and the fronts only see :class:`IndexView`, one generation
opened for reading, so another engine can hold the index behind the same questions.

Passage ids are integers whose meaning belongs to the store, with one promise retrieval
relies on: the windows of one article have consecutive ids in the order of their first
sentence, so the neighbours of a passage are one lookup away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qa_bot.filters import SearchFilters
from qa_bot.models import ArticleMeta, Chunk, SourceInfo

if TYPE_CHECKING:
    from qa_bot.store import Manifest


@dataclass(frozen=True)
class Candidates:
    """The passages a question's hybrid search found, before any ranking.

    ``ids`` ascending; ``dense`` the cosine of each with the question; ``lexical`` its BM25
    score divided by the best BM25 score among the passages the filters admit (0 to 1). Empty
    when the filters admit no passage.
    """

    ids: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray

    @classmethod
    def none(cls) -> Candidates:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))


class Lexicon(Protocol):
    """The words of a generation, for the decisions made from them: which question words the
    index holds (typo tolerance, unknown names) and how rare each is (coverage)."""

    n_docs: int

    def holds(self, term: str) -> bool: ...

    def near_terms(self, term: str) -> tuple[str, ...]: ...

    def idf(self, term: str) -> float: ...


class IndexView(Protocol):
    """One generation of the index, opened for reading; it never changes under its reader."""

    generation: str
    manifest: Manifest

    @property
    def n_chunks(self) -> int: ...

    @property
    def lexical(self) -> Lexicon: ...

    def candidates(
        self,
        query_vector: np.ndarray,
        terms: Sequence[str],
        k: int,
        *,
        filters: SearchFilters | None = None,
        extra_terms: Sequence[str] = (),
        extra_weight: float = 0.5,
    ) -> Candidates:
        """Up to ``k`` nearest passages by cosine and up to ``k`` best by BM25 of ``terms``
        (``extra_terms`` counting ``extra_weight`` each), among those ``filters`` admit."""
        ...

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        """The passages with these ids (ids that do not exist are left out)."""
        ...

    def chunk_ids_of(self, article_ids: list[str]) -> np.ndarray: ...

    def article(self, article_id: str) -> ArticleMeta | None: ...

    def articles_by_id(self, article_ids: list[str]) -> dict[str, ArticleMeta]: ...

    def article_text(self, article_id: str) -> str | None: ...

    def sources(self) -> list[SourceInfo]: ...

    def outlets(self) -> list[str]: ...

    def undated_articles(self) -> int: ...

    def close(self) -> None: ...
