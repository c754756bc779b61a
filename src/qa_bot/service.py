"""The one object every front talks to: index, ask, sources, status, passage.

It owns the expensive things (the embedding model, the open index snapshot) so they are loaded
once per process, and it notices when ``qa-bot index`` has switched the index underneath it:
the next question is answered from the new generation, while a question already running keeps
the snapshot it started with.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa_bot.answer import compose, decline
from qa_bot.corpus import is_furniture
from qa_bot.embedding import Embedder, SentenceTransformerEmbedder
from qa_bot.errors import (
    IndexMismatchError,
    IndexMissingError,
    InvalidQuestionError,
    QABotError,
)
from qa_bot.filters import SearchFilters, outlet_in_question
from qa_bot.indexer import (
    IndexReport,
    ProgressFactory,
    metadata_report,
    stale_files,
    tokenizer_changed,
    update_index,
    windows_changed,
)
from qa_bot.models import Answer, ArticleMeta, SourceInfo
from qa_bot.retrieval import Retrieval, correction_note, retrieve
from qa_bot.settings import Settings
from qa_bot.store_api import IndexView, open_store
from qa_bot.text import line_end

if TYPE_CHECKING:
    from qa_bot.evaluation import EvalQuestion
    from qa_bot.evaluation import Report as EvalReport

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000


@dataclass(frozen=True)
class IndexStatus:
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
    """The text around a quote, for "show me more" in the bot and the CLI."""

    article: ArticleMeta
    text: str
    quote_start: int
    quote_end: int


class QAService:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        query_embedder: Embedder | None = None,
    ):
        self.settings = settings
        self.store = open_store(settings)
        self._embedder = embedder
        self._query_embedder = query_embedder
        self._snapshot: IndexView | None = None
        self._lock = threading.Lock()

    # --- components, loaded on first use -------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The model that builds the index (sentence-transformers unless told otherwise)."""
        if self._embedder is None:
            emb = self.settings.embedding
            self._embedder = SentenceTransformerEmbedder(
                emb.model, batch_size=emb.batch_size, threads=emb.threads
            )
        return self._embedder

    @property
    def query_embedder(self) -> Embedder:
        """The model that embeds questions: the ONNX export when there is one (no torch to
        import, ~5 ms a question), else the build model itself."""
        if self._query_embedder is None:
            self._query_embedder = self._pick_query_embedder()
        return self._query_embedder

    def onnx_dir(self) -> Path:
        """Where the ONNX export of the configured model lives: beside the generations, so
        rebuilding the index does not export again."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.embedder.model_id)
        return self.settings.index_dir / "onnx" / slug

    def _onnx_embedder(self) -> Embedder | None:
        from qa_bot.onnx_embedding import OnnxEmbedder, OnnxExportError

        folder = self.onnx_dir()
        if not folder.is_dir():
            return None
        try:
            onnx = OnnxEmbedder(
                folder,
                batch_size=self.settings.embedding.batch_size,
                threads=self.settings.embedding.threads,
            )
            onnx.verify()  # a damaged export is left for `qa-bot index` to replace
        except OnnxExportError as exc:
            logger.warning("%s; questions use sentence-transformers meanwhile", exc)
            return None
        return onnx if onnx.model_id == self.embedder.model_id else None

    def _pick_query_embedder(self) -> Embedder:
        backend = self.settings.embedding.backend
        if backend == "sentence-transformers" or not isinstance(
            self.embedder, SentenceTransformerEmbedder
        ):
            return self.embedder
        onnx = self._onnx_embedder()
        if onnx is not None:
            return onnx
        if backend == "onnx":
            raise IndexMissingError(
                f"no ONNX export of {self.settings.embedding.model} in {self.onnx_dir()}; "
                "run `qa-bot index` to make it"
            )
        return self.embedder

    def _build_embedder(self) -> Embedder:
        """Rebuilds embed with the ONNX export when there is one: the same vectors (cosine
        1.0000 against sentence-transformers on 500 passages), nearly twice the throughput,
        and no torch import, so refreshing a stale index before a question stays quick."""
        try:
            query = self.query_embedder
        except IndexMissingError:  # backend "onnx" with no export yet: this build makes it
            return self.embedder
        if query is not self.embedder and query.model_id == self.embedder.model_id:
            return query
        return self.embedder

    def _export_onnx(self) -> bool:
        """Export the query model once, after a build (torch is loaded by then anyway)."""
        if self.settings.embedding.backend == "sentence-transformers" or not isinstance(
            self.embedder, SentenceTransformerEmbedder
        ):
            return False
        if self._onnx_embedder() is not None:
            return False
        from qa_bot.onnx_embedding import OnnxExportError, export_onnx

        try:
            export_onnx(self.settings.embedding.model, self.onnx_dir())
        except OnnxExportError as exc:
            # A model the exporter does not support (another pooling, say) still answers,
            # through sentence-transformers; the index itself is built and fine.
            logger.warning("no ONNX query model, questions will use sentence-transformers: %s", exc)
            return False
        self._query_embedder = None
        return True

    def snapshot(self) -> IndexView:
        """The current index generation, reopened when a rebuild has switched it."""
        with self._lock:
            current = self.store.current()
            if current is None:
                raise IndexMissingError(
                    f"no index in {self.settings.index_dir}; run `qa-bot index` to build it"
                )
            if self._snapshot is None or self._snapshot.generation != current:
                self._snapshot = self.store.open(self.settings.retrieval)
            return self._snapshot

    # --- indexing -------------------------------------------------------------------------------

    def index(
        self,
        *,
        force: bool = False,
        progress: ProgressFactory | None = None,
        lock_wait: float = 0.0,
    ) -> IndexReport:
        report = update_index(
            self.settings,
            self._build_embedder(),
            force=force,
            progress=progress,
            lock_wait=lock_wait,
        )
        report.onnx_exported = self._export_onnx()
        return report

    def ensure_index(self, progress: ProgressFactory | None = None) -> IndexReport | None:
        """Build the index if it is missing, refresh it if seed files changed or it was made
        by another chunker or tokenizer (settings or an upgrade); else do nothing.

        An index used without its seeds folder (copied elsewhere, or opened with ``--index``
        from another directory) is answered from as it is: there is nothing to refresh it from.
        """
        if self.store.current() is not None:
            try:
                manifest = self.store.read_manifest()
            except QABotError:
                return self.index(progress=progress, lock_wait=60)
            if self.settings.seeds_dir.is_dir() and (
                tokenizer_changed(self.settings, manifest)
                or windows_changed(self.settings, manifest)
            ):
                return self.index(progress=progress, lock_wait=60)
            if not self.settings.seeds_dir.is_dir():
                return None
            if not stale_files(self.settings, manifest):
                return metadata_report(self.settings, manifest)  # None when it is fine
        return self.index(progress=progress, lock_wait=60)

    # --- questions ------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        filters: SearchFilters | None = None,
        extra_terms: Sequence[str] = (),
        boost_articles: Sequence[str] = (),
        notes: Sequence[str] = (),
    ) -> Answer:
        question = validate_question(question)
        snapshot = self.snapshot()
        self._check_model(snapshot)
        retrieval, notes = self._retrieve(
            snapshot, question, filters, extra_terms, boost_articles, list(notes)
        )
        if retrieval is None:
            return decline(question, None, notes=notes)
        return compose(
            question,
            retrieval,
            lambda article_id: snapshot.article_text(article_id) or "",
            self.settings.retrieval,
            notes=notes,
        )

    def _check_model(self, snapshot: IndexView) -> None:
        built_with, asking_with = snapshot.manifest.model_id, self.query_embedder.model_id
        if built_with != asking_with:
            raise IndexMismatchError(
                f"the index was built with {built_with} but the configured model is "
                f"{asking_with}; run `qa-bot index` to rebuild it"
            )

    def ask_many(self, questions: Iterable[str], **kwargs: object) -> list[Answer]:
        return [self.ask(q, **kwargs) for q in questions]  # type: ignore[arg-type]

    def search(self, question: str, *, filters: SearchFilters | None = None) -> Retrieval | None:
        """The ranked passages behind an answer (for evaluation and debugging)."""
        question = validate_question(question)
        snapshot = self.snapshot()
        self._check_model(snapshot)
        retrieval, _ = self._retrieve(snapshot, question, filters, (), (), [])
        return retrieval

    def _retrieve(
        self,
        snapshot: IndexView,
        question: str,
        filters: SearchFilters | None,
        extra_terms: Sequence[str],
        boost_articles: Sequence[str],
        notes: list[str],
    ) -> tuple[Retrieval | None, list[str]]:
        ignore: list[str] = []
        if filters is None or not filters.outlets:
            named = outlet_in_question(question, snapshot.outlets())
            if named:
                base = filters or SearchFilters()
                filters = SearchFilters(outlets=(named,), since=base.since, until=base.until)
                ignore.append(named)
        if filters is not None and filters.active:
            note = f"Searching only articles {filters.describe()}"
            undated = snapshot.undated_articles() if filters.since or filters.until else 0
            if undated:
                some = "1 article" if undated == 1 else f"{undated} articles"
                note += f"; {some} without a stated date left out"
            notes.append(note + ".")
        vector = self.query_embedder.embed([question])[0]
        retrieval = retrieve(
            snapshot,
            question,
            vector,
            self.settings.retrieval,
            filters=filters,
            extra_terms=extra_terms,
            boost_articles=boost_articles,
            ignore_terms=ignore,
        )
        corrected = correction_note(question, retrieval)
        if corrected:
            notes.append(corrected)
        if retrieval.unknown_names:
            names = " or ".join(f"“{name}”" for name in retrieval.unknown_names)
            notes.append(f"The articles never mention {names}.")
        return retrieval, notes

    # --- evaluation -----------------------------------------------------------------------------

    def evaluate(
        self, questions: Sequence[EvalQuestion], *, progress: Callable[[int], None] | None = None
    ) -> EvalReport:
        """Score answers against gold questions (see :mod:`qa_bot.evaluation`)."""
        from qa_bot.evaluation import evaluate

        return evaluate(self, questions, progress=progress)

    # --- browsing -------------------------------------------------------------------------------

    def sources(self) -> list[SourceInfo]:
        return self.snapshot().sources()

    def status(self) -> IndexStatus:
        snapshot = self.snapshot()
        sources = snapshot.sources()
        dates = [s.meta.date for s in sources if s.meta.date]
        manifest = snapshot.manifest
        summary = snapshot.summary()
        try:
            stale = tuple(stale_files(self.settings, manifest))
        except Exception:
            stale = ()
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

    def passage(self, article_id: str, start: int, end: int) -> Passage | None:
        """The paragraph(s) around a quote: the quote's own paragraph and its neighbours."""
        snapshot = self.snapshot()
        meta = snapshot.article(article_id)
        text = snapshot.article_text(article_id)
        if meta is None or text is None or not (0 <= start < end <= len(text)):
            return None
        para_start = text.rfind("\n", 0, start) + 1
        para_end = line_end(text, end)
        while para_end - para_start < 700:
            prev = text.rfind("\n", 0, max(para_start - 1, 0))
            nxt = text.find("\n", para_end + 1)
            grew = False
            if para_start > 0:
                para_start = prev + 1
                grew = True
            if para_end < len(text) and nxt > 0:
                para_end = nxt
                grew = True
            if not grew:
                break
        return _readable(meta, text, para_start, para_end, start, end)

    def display_path(self, meta: ArticleMeta) -> str:
        """The article's file as the user knows it: relative to the project root when inside."""
        path = self.settings.seeds_dir / meta.path
        try:
            return path.resolve().relative_to(self.settings.root_dir.resolve()).as_posix()
        except ValueError:
            return path.as_posix()


_HAS_WORD = re.compile(r"[^\W_]", re.UNICODE)


def _readable(meta: ArticleMeta, text: str, lo: int, hi: int, start: int, end: int) -> Passage:
    """The text from ``lo`` to ``hi`` with the page furniture (menus, promos, credits) of the
    lines around the quote left out, and the quote's place in it. The lines the quote spans
    are kept as they are."""
    block_start = max(lo, text.rfind("\n", lo, start) + 1)
    block_end = line_end(text, end, hi)

    def clean(part: str) -> list[str]:
        return [ln for ln in part.split("\n") if ln.strip() and not is_furniture(ln)]

    before, after = clean(text[lo:block_start]), clean(text[block_end:hi])
    head = "\n\n".join(before) + ("\n\n" if before else "")
    block = text[block_start:block_end]
    excerpt = head + block + ("\n\n" if after else "") + "\n\n".join(after)
    quote_at = len(head) + (start - block_start)
    lead = len(excerpt) - len(excerpt.lstrip())
    return Passage(meta, excerpt.strip(), quote_at - lead, quote_at - lead + (end - start))


def validate_question(question: str, limit: int = MAX_QUESTION_CHARS) -> str:
    """A question must have something to search for and fit what a question can be."""
    cleaned = " ".join((question or "").split())
    if not cleaned:
        raise InvalidQuestionError("the question is empty; ask something about the articles")
    if len(cleaned) > limit:
        raise InvalidQuestionError(
            f"the question is {len(cleaned):,} characters long; the limit is {limit:,}"
        )
    if not _HAS_WORD.search(cleaned):
        raise InvalidQuestionError("the question has no words in it; ask in words")
    return cleaned


__all__ = ["IndexStatus", "Passage", "Path", "QAService", "validate_question"]
