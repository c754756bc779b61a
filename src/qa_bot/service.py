"""The one object every front talks to: index, ask, sources, status, passage.

It owns the expensive things (the embedding model, the open index snapshot) so they are loaded
once per process, and it notices when ``qa-bot index`` has switched the index underneath it:
the next question is answered from the new generation, while a question already running keeps
the snapshot it started with.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from qa_bot.answer import compose
from qa_bot.corpus import KNOWN_OUTLETS
from qa_bot.embedding import Embedder, SentenceTransformerEmbedder
from qa_bot.errors import IndexMismatchError, IndexMissingError, QABotError
from qa_bot.feedback import FeedbackLog
from qa_bot.filters import SearchFilters, outlet_in_question, source_outlet
from qa_bot.indexer import (
    IndexReport,
    ProgressFactory,
    metadata_report,
    stale_files,
    tokenizer_changed,
    update_index,
    windows_changed,
)
from qa_bot.models import Answer, ArticleMeta, IndexStatus, Passage, SourceInfo, Span
from qa_bot.passages import further_answer, passage_around, speaker_answer
from qa_bot.query import speaker
from qa_bot.reader_export import ensure_reader_export
from qa_bot.reading_notes import reading_notes
from qa_bot.retrieval import Rankers, Retrieval, load_rankers, retrieve, say_if_unexported
from qa_bot.settings import Settings
from qa_bot.store_api import index_status
from qa_bot.stores import IndexView, open_store
from qa_bot.text import printable, terms, validate_question

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


class QAService:
    """The one door of the core: every front (CLI, chat loop, bot) and the evaluation ask
    through it, and get plain types back (:mod:`qa_bot.models`)."""

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
        #: Search terms of articles, by (generation, article id): what follow-ups are read
        #: against (:meth:`vocabulary`).
        self._vocabulary: dict[tuple[str, str], frozenset[str]] = {}

    # --- components, loaded on first use -------------------------------------------------------

    @cached_property
    def rankers(self) -> Rankers:
        """The learned ranker (if trained for the embedding model), any cross-encoder, and the
        reader the settings name, once exported."""
        threads = self.settings.embedding.threads
        return load_rankers(
            self.settings.retrieval, self.query_embedder, self.settings.index_dir, threads
        )

    def _embedded_and_ranked(self, question: str) -> tuple[np.ndarray, Rankers]:
        """The question's vector and the rankers; the first time, the rankers (the reader's
        graph among them) load on a second core while the query model embeds."""
        if "rankers" in self.__dict__:
            return self.query_embedder.embed([question])[0], self.rankers
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(lambda: self.rankers)
            vector, rankers = self.query_embedder.embed([question])[0], pending.result()
        say_if_unexported(rankers, self.settings.retrieval, self.settings.index_dir)
        return vector, rankers

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
        import, and faster), else the build model itself."""
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

    def _onnx_wanted(self) -> bool:
        """Questions may go through an ONNX export: the setting allows it, and the model is a
        sentence-transformers one (which the exporter knows)."""
        sentence = isinstance(self.embedder, SentenceTransformerEmbedder)
        return sentence and self.settings.embedding.backend != "sentence-transformers"

    def _pick_query_embedder(self) -> Embedder:
        if not self._onnx_wanted():
            return self.embedder
        onnx = self._onnx_embedder()
        if onnx is not None:
            return onnx
        if self.settings.embedding.backend == "onnx":
            raise IndexMissingError(
                f"no ONNX export of {self.settings.embedding.model} in {self.onnx_dir()}; "
                "run `qa-bot index` to make it"
            )
        return self.embedder

    def _build_embedder(self) -> Embedder:
        """Rebuilds embed with the ONNX export when there is one: the same vectors as
        sentence-transformers (benchmarks/README.md), a higher throughput and no torch import,
        so refreshing a stale index before a question stays quick."""
        try:
            query = self.query_embedder
        except IndexMissingError:  # backend "onnx" with no export yet: this build makes it
            return self.embedder
        if query is not self.embedder and query.model_id == self.embedder.model_id:
            return query
        return self.embedder

    def _export_onnx(self) -> bool:
        """Export the query model once, after a build (torch is loaded by then anyway)."""
        if not self._onnx_wanted() or self._onnx_embedder() is not None:
            return False
        from qa_bot.onnx_export import OnnxExportError, export_onnx

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
        embedder = self._build_embedder()
        report = update_index(
            self.settings, embedder, force=force, progress=progress, lock_wait=lock_wait
        )
        report.onnx_exported = self._export_onnx()
        report.reader_exported = self._export_reader()
        return report

    def _export_reader(self, *, verify: bool = True) -> bool:
        """Export the configured reader once, when the learned stages it joins are in use."""
        trained = self.settings.retrieval.reader
        if trained is None or self.rankers.learned is None:
            return False
        made = ensure_reader_export(self.settings.index_dir, trained, verify=verify)
        if made:
            self.__dict__.pop("rankers", None)  # the next question loads the new export
        return made

    def ensure_index(self, progress: ProgressFactory | None = None) -> IndexReport | None:
        """Build the index if it is missing, refresh it if seed files changed or it was made
        by another chunker or tokenizer (settings or an upgrade); else do nothing.

        An index used without its seeds folder (copied elsewhere, or opened with ``--index``
        from another directory) is answered from as it is: there is nothing to refresh it from.
        """
        if self.store.current() is not None:
            self._export_reader(verify=False)  # an index made before the reader shipped
            try:
                manifest = self.store.read_manifest()
            except QABotError:
                return self.index(progress=progress, lock_wait=60)
            if not self.settings.seeds_dir.is_dir():
                return None
            if not any(
                changed(self.settings, manifest)
                for changed in (tokenizer_changed, windows_changed, stale_files)
            ):
                return metadata_report(self.settings, manifest)  # None when it is fine
        return self.index(progress=progress, lock_wait=60)

    # --- questions ------------------------------------------------------------------------------

    def check_question(self, question: str) -> str:
        """The question as it will be searched (whitespace tidied), or InvalidQuestionError
        with a message for people when it is empty, wordless or too long."""
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
        """Answer a question with quotes from the articles (see :meth:`explain`)."""
        answer, _ = self.explain(
            question,
            filters=filters,
            extra_terms=extra_terms,
            boost_articles=boost_articles,
            notes=notes,
            avoid=avoid,
        )
        return answer

    def explain(
        self,
        question: str,
        *,
        filters: SearchFilters | None = None,
        extra_terms: Sequence[str] = (),
        boost_articles: Sequence[str] = (),
        notes: Sequence[str] = (),
        avoid: Sequence[Span] = (),
    ) -> tuple[Answer, Retrieval]:
        """The answer and the ranked passages behind it (what the evaluation scores).

        ``filters`` restrict the articles; ``boost_articles`` get a small bonus (a follow-up's
        topic); ``avoid`` are places already quoted, left out before the decision.
        """
        question = self.check_question(question)
        snapshot = self.snapshot()
        self._check_model(snapshot)
        retrieval, notes = self._retrieve(
            snapshot, question, filters, extra_terms, boost_articles, list(notes), avoid
        )
        answer = compose(
            question,
            retrieval,
            lambda article_id: snapshot.article_text(article_id) or "",
            self.settings.retrieval,
            notes=notes,
            quote_model=self.rankers.quote,
        )
        return replace(answer, generation=snapshot.generation), retrieval

    def _check_model(self, snapshot: IndexView) -> None:
        built_with, asking_with = snapshot.manifest.model_id, self.query_embedder.model_id
        if built_with != asking_with:
            raise IndexMismatchError(
                f"the index was built with {built_with} but the configured model is "
                f"{asking_with}; run `qa-bot index` to rebuild it"
            )

    def search(self, question: str, *, filters: SearchFilters | None = None) -> Retrieval:
        """The ranked passages behind an answer (for evaluation and debugging)."""
        question = self.check_question(question)
        snapshot = self.snapshot()
        self._check_model(snapshot)
        retrieval, _ = self._retrieve(snapshot, question, filters, (), (), [])
        return retrieval

    def more(
        self,
        question: str,
        *,
        filters: SearchFilters | None = None,
        shown: Sequence[Span] = (),
        first_n: int = 1,
    ) -> Answer:
        """Further passages for a question ("More" in the bot): the next ``top_k`` best ones,
        numbered from ``first_n``, none of them a place already ``shown``."""
        hits = self.search(question, filters=filters).hits
        return further_answer(question, hits, shown, first_n, self.settings.retrieval.top_k)

    def _retrieve(
        self,
        snapshot: IndexView,
        question: str,
        filters: SearchFilters | None,
        extra_terms: Sequence[str],
        boost_articles: Sequence[str],
        notes: list[str],
        avoid: Sequence[Span] = (),
    ) -> tuple[Retrieval, list[str]]:
        ignore: list[str] = []
        if filters is None or not filters.outlets:
            named = outlet_in_question(question, snapshot.outlets())
            named = named or source_outlet(speaker(question), KNOWN_OUTLETS)
            if named:
                filters = replace(filters or SearchFilters(), outlets=(named,))
                ignore.append(named)
        if filters is not None and filters.active:
            note = f"Searching only articles {filters.describe()}"
            undated = snapshot.undated_articles() if filters.since or filters.until else 0
            if undated:
                some = "1 article" if undated == 1 else f"{undated} articles"
                note += f"; {some} without a stated date left out"
            notes.append(note + ".")
        vector, rankers = self._embedded_and_ranked(question)
        retrieval = retrieve(
            snapshot,
            question,
            vector,
            self.settings.retrieval,
            rankers=rankers,
            filters=filters,
            extra_terms=extra_terms,
            boost_articles=boost_articles,
            ignore_terms=ignore,
            avoid=avoid,
        )
        notes.extend(reading_notes(question, retrieval))
        return retrieval, notes

    @cached_property
    def feedback(self) -> FeedbackLog:
        """Readers' votes on answers (:mod:`qa_bot.feedback`): every front records and reads
        them here."""
        return FeedbackLog.from_settings(self.settings)

    # --- browsing -------------------------------------------------------------------------------

    def sources(self) -> list[SourceInfo]:
        return self.snapshot().sources()

    def status(self) -> IndexStatus:
        snapshot = self.snapshot()
        try:
            stale = tuple(stale_files(self.settings, snapshot.manifest))
        except Exception:
            stale = ()
        return index_status(snapshot, stale)

    def outlets(self) -> list[str]:
        """The outlets the indexed articles name, sorted."""
        return list(self.snapshot().outlets())

    def vocabulary(self, article_ids: Iterable[str]) -> frozenset[str]:
        """The search terms of some articles (what a follow-up's words are read against)."""
        snapshot = self.snapshot()
        found: set[str] = set()
        for article_id in article_ids:
            key = (snapshot.generation, article_id)
            if key not in self._vocabulary:
                if len(self._vocabulary) >= VOCABULARY_CACHE:
                    self._vocabulary.clear()
                self._vocabulary[key] = frozenset(terms(snapshot.article_text(article_id) or ""))
            found |= self._vocabulary[key]
        return frozenset(found)

    def passage(
        self, article_id: str, start: int, end: int, *, content_hash: str | None = None
    ) -> Passage | None:
        """The paragraph(s) around a quote; None when the article has left the index, or has
        changed since the quote was shown (its ``content_hash`` is no longer the same)."""
        found = _article(self.snapshot(), article_id)
        if found is None or content_hash not in (None, found[0].content_hash):
            return None
        return passage_around(*found, start, end)

    def speaker(self, question: str, quoted: Span, notes: Sequence[str] = ()) -> Answer | None:
        """Whose words the quote ``quoted`` (article, start, end) of an earlier answer holds
        ("who said that?": :func:`qa_bot.passages.speaker_answer`); None when the article has
        left the index."""
        snapshot = self.snapshot()
        found = _article(snapshot, quoted[0])
        lookback = self.settings.retrieval.speaker_lookback
        said = found and speaker_answer(question, *found, quoted, lookback)
        return said and replace(said, notes=tuple(notes), generation=snapshot.generation)

    def display_path(self, meta: ArticleMeta) -> str:
        """The article's file as the user knows it: relative to the project root when inside."""
        path = self.settings.seeds_dir / meta.path
        try:
            shown = path.resolve().relative_to(self.settings.root_dir.resolve()).as_posix()
        except ValueError:
            shown = path.as_posix()
        return printable(shown)  # a newline in a file name must not break the sources line


#: Articles whose terms :meth:`QAService.vocabulary` keeps at most.
VOCABULARY_CACHE = 256


def _article(snapshot: IndexView, article_id: str) -> tuple[ArticleMeta, str] | None:
    meta, text = snapshot.article(article_id), snapshot.article_text(article_id)
    return None if meta is None or text is None else (meta, text)


__all__ = ["QAService", "validate_question"]
