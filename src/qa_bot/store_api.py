"""What the rest of the code asks of an index, whatever engine holds it.

Two implementations: the embedded default (:mod:`qa_bot.store`: FAISS + BM25 + SQLite in
generation folders) and Milvus (:mod:`qa_bot.store_milvus`), chosen by ``store.backend`` in
:func:`qa_bot.stores.open_store`; both describe a generation with the same :class:`Manifest`.
Retrieval, answers, the service and the fronts only see :class:`IndexView`, one generation
opened for reading; the indexer only sees :class:`Store` and its :class:`Build`.

Passage ids are integers whose meaning belongs to the store, with one promise retrieval
relies on: the windows of one article have consecutive ids in the order of their first
sentence, so the neighbours of a passage are one lookup away.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa_bot.filters import SearchFilters
from qa_bot.models import ArticleMeta, Chunk, IndexStatus, SourceInfo

if TYPE_CHECKING:
    from qa_bot.settings import RetrievalSettings

#: The layout of a generation (the index folder's files and tables, Milvus's rows).
#: 2: each article's ``stated_span``. An index in another format is rebuilt by the next
#: ``qa-bot index`` (or ``ask``, the bot).
FORMAT_VERSION = 2


@dataclass(frozen=True)
class FileRecord:
    """What the last build knew of one seed file, to skip it next time if unchanged."""

    rel: str
    digest: str
    size: int
    mtime_ns: int
    article_id: str
    chunks: int


@dataclass(frozen=True)
class Manifest:
    format_version: int
    model_id: str
    dimension: int
    chunking: dict[str, Any]
    files: dict[str, FileRecord]
    built_at: str
    chunks: int
    dense_kind: str = "flat"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["files"] = {k: FileRecord(**v) for k, v in data["files"].items()}
        return cls(**data)


def format_message(found: object, location: str) -> str:
    """Why an index in another format is not read, and what to do: one message for both
    stores."""
    return (
        f"the index in {location} is in format {found}, and this version of qa-bot reads "
        f"format {FORMAT_VERSION}; run `qa-bot index` to rebuild it"
    )


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


@dataclass(frozen=True)
class StoreSummary:
    """What ``qa-bot status`` says about where the index lives, beyond the generation."""

    backend: str
    location: str
    #: Engine facts worth knowing (collections, row counts, index type), in display order.
    details: tuple[tuple[str, str], ...] = ()


class Lexicon(Protocol):
    """The words of a generation, for the decisions made from them: which question words the
    index holds (typo tolerance, unknown names) and how rare each is (coverage)."""

    n_docs: int

    def holds(self, term: str) -> bool: ...

    def near_terms(self, term: str) -> tuple[str, ...]: ...

    def slip_readings(self, term: str) -> tuple[str, ...]: ...

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

    def vectors_of(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of these existing passages, one row per id (features of the
        learned ranker: how close the windows around a candidate are to the question)."""
        ...

    def chunk_ids_of(self, article_ids: list[str]) -> np.ndarray: ...

    def article(self, article_id: str) -> ArticleMeta | None: ...

    def articles_by_id(self, article_ids: list[str]) -> dict[str, ArticleMeta]: ...

    def article_text(self, article_id: str) -> str | None: ...

    def sources(self) -> list[SourceInfo]: ...

    def outlets(self) -> list[str]: ...

    def undated_articles(self) -> int: ...

    def summary(self) -> StoreSummary:
        """Where this generation lives and what the engine holds, for ``qa-bot status``."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class FreshArticle:
    """An article a build writes: its metadata and text, the file record that will say it is
    unchanged next time, and its passages with their vectors (one row per passage)."""

    meta: ArticleMeta
    text: str
    record: FileRecord
    chunks: list[Chunk]
    vectors: np.ndarray


class Build(Protocol):
    """One build in progress. Nothing it writes is visible to readers before :meth:`commit`.

    A build says what the new generation holds: every article :meth:`put` (new or changed,
    with fresh passages and vectors) or :meth:`keep` (unchanged since the previous
    generation). Any article of the previous generation that is neither is deleted by the
    commit; an interrupted or aborted build leaves the previous generation as it was.
    """

    def put(self, article: FreshArticle) -> None: ...

    def keep(self, record: FileRecord) -> None: ...

    def commit(self, manifest: Manifest) -> str:
        """Make the build the current generation, atomically; returns its name."""
        ...

    def abort(self) -> None: ...


class Store(Protocol):
    """Where the index lives: finds, opens and writes its generations."""

    #: Where, in words for messages ("embeddings/", "Milvus at http://host:19530, ...").
    location: str

    def current(self) -> str | None:
        """The name of the current generation, or None when there is no index yet."""
        ...

    def read_manifest(self, generation: str | None = None) -> Manifest: ...

    def open(self, retrieval: RetrievalSettings) -> IndexView: ...

    def lock(self, *, wait: float = 0.0) -> AbstractContextManager[None]:
        """Only one build at a time; a second waits ``wait`` s, then raises
        :class:`qa_bot.errors.IndexLockedError`."""
        ...

    def begin(self, previous: IndexView | None, retrieval: RetrievalSettings) -> Build:
        """Start a build over ``previous`` (None: from nothing). Call with the lock held."""
        ...

    def refresh_records(self, view: IndexView, records: Mapping[str, FileRecord]) -> None:
        """Record new sizes and modification times of files whose content did not change,
        so the next build skips them by a look at the file system."""
        ...


def index_status(snapshot: IndexView, stale: tuple[str, ...]) -> IndexStatus:
    """What ``qa-bot status`` and the bot's /status show of an index: its generation, model,
    size, dates and outlets, the store it lives in, and the seed files changed since."""
    sources = snapshot.sources()
    dates = [s.meta.date for s in sources if s.meta.date]
    manifest = snapshot.manifest
    summary = snapshot.summary()
    return IndexStatus(
        generation=snapshot.generation,
        built_at=manifest.built_at,
        model_id=manifest.model_id,
        dense_kind=manifest.dense_kind,
        articles=len(sources),
        chunks=manifest.chunks,
        first_date=min(dates, default=None),
        last_date=max(dates, default=None),
        outlets=tuple(snapshot.outlets()),
        stale=stale,
        store=summary.backend,
        location=summary.location,
        store_details=summary.details,
    )
