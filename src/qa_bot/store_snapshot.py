"""One generation of the index folder opened for reading (see :mod:`qa_bot.store` for the
folder's layout): its FAISS index, vectors, BM25 postings and SQLite tables, read in place and
never changed, so questions answered from it keep their generation while a build writes the
next one.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_bot import text as text_module
from qa_bot.chunking import lexical_text
from qa_bot.errors import IndexCorruptError
from qa_bot.files import reading_arrays
from qa_bot.filters import SearchFilters
from qa_bot.lexical import LexicalIndex
from qa_bot.models import ArticleMeta, Chunk, SourceInfo
from qa_bot.settings import RetrievalSettings
from qa_bot.store_api import Candidates, Manifest, StoreSummary
from qa_bot.store_search import faiss_candidates
from qa_bot.vector_index import VectorIndex

#: Filters (outlets and dates) whose chunk ids a generation keeps at hand.
FILTERS_REMEMBERED = 64

ARTICLE_COLUMNS = (
    "id, path, title, outlet, date, date_text, url, content_hash, stated_start, stated_end"
)


def _meta_from_row(row: sqlite3.Row | tuple[Any, ...]) -> ArticleMeta:
    id_, path, title, outlet, date, date_text, url, digest, stated_start, stated_end = row[:10]
    return ArticleMeta(
        id=id_,
        path=path,
        title=title,
        outlet=outlet,
        date=dt.date.fromisoformat(date) if date else None,
        date_text=date_text,
        url=url,
        content_hash=digest,
        stated_span=None if stated_start is None else (stated_start, stated_end),
    )


class Snapshot:
    """One generation opened read-only. Thread-safe for reads (SQLite opened per thread)."""

    def __init__(self, path: Path, manifest: Manifest, retrieval: RetrievalSettings):
        self.path = path
        self.generation = path.name
        self.manifest = manifest
        self._db_path = path / "meta.sqlite"
        self.dense = VectorIndex.load(path / "dense.faiss", retrieval)
        self.vectors = self._load_vectors()
        self._lexical = LexicalIndex.load(path / "lexical")
        # Postings made by another version of the tokenizer would miss words the questions
        # are now split into. A build with the seeds at hand rewrites them on disk
        # (QAService.ensure_index); an index asked without its seeds gets postings rebuilt in
        # memory from the stored window texts, on first use (a build never needs them).
        self._lexical_stale = manifest.chunking.get("tokenizer") != text_module.TOKENIZER_VERSION
        self._lexical_lock = threading.Lock()
        self._local = _ThreadLocalDB(self._db_path)
        self._outlets: list[str] | None = None
        self._filtered: dict[tuple[object, ...], np.ndarray] = {}
        self._filter_lock = threading.Lock()
        n_rows = self._db().execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        sizes = {
            "manifest": manifest.chunks,
            "vectors": int(self.vectors.shape[0]),
            "dense index": int(self.dense.ntotal),
            "chunk table": int(n_rows),
            "lexical index": self._lexical.n_docs,
        }
        if len(set(sizes.values())) != 1:
            raise IndexCorruptError(
                "index parts are out of step ("
                + ", ".join(f"{k}: {v}" for k, v in sizes.items())
                + "); run `qa-bot index --force` to rebuild"
            )
        if self.vectors.ndim != 2 or (
            self.vectors.shape[0] and self.vectors.shape[1] != manifest.dimension
        ):
            raise IndexCorruptError(f"vectors in {path} do not have dimension {manifest.dimension}")

    def _db(self) -> sqlite3.Connection:
        return self._local.get()

    def _load_vectors(self) -> np.ndarray:
        """The chunk vectors: a separate file when there is one (IVF, and generations written
        before the index file became their only copy), else the index's own storage."""
        file = self.path / "vectors.npy"
        if file.is_file():
            try:
                with reading_arrays():
                    return np.load(file, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise IndexCorruptError(
                    f"{file} is unreadable: {exc}; run `qa-bot index --force` to rebuild"
                ) from exc
        stored = self.dense.stored_vectors()
        if stored is None:
            raise IndexCorruptError(f"{file} is missing; run `qa-bot index --force` to rebuild")
        return stored

    @property
    def lexical(self) -> LexicalIndex:
        if self._lexical_stale:
            with self._lexical_lock:
                if self._lexical_stale:
                    self._lexical = LexicalIndex.build(self._lexical_texts())
                    self._lexical_stale = False
        return self._lexical

    def _lexical_texts(self) -> list[str]:
        rows = self._db().execute(
            "SELECT a.title, c.text FROM chunks c JOIN articles a ON a.id = c.article_id "
            "ORDER BY c.id"
        )
        return [lexical_text(title, chunk_text) for title, chunk_text in rows]

    @property
    def n_chunks(self) -> int:
        return self.manifest.chunks

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
        """See :meth:`qa_bot.store_api.IndexView.candidates`."""
        return faiss_candidates(
            self,
            query_vector,
            terms,
            k,
            filters=filters,
            extra_terms=extra_terms,
            extra_weight=extra_weight,
        )

    def vectors_of(self, ids: list[int]) -> np.ndarray:
        """The stored (normalised) vectors of these passages, one row per id."""
        return np.asarray(self.vectors[np.asarray(ids, dtype=np.int64)], dtype=np.float32)

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db().execute(
            f'SELECT id, article_id, ordinal, start, "end", text FROM chunks WHERE id IN ({marks})',
            [int(i) for i in ids],
        )
        return {r[0]: Chunk(r[1], r[2], r[3], r[4], r[5]) for r in rows}

    def chunk_ids_of(self, article_ids: list[str]) -> np.ndarray:
        if not article_ids:
            return np.zeros(0, dtype=np.int64)
        marks = ",".join("?" * len(article_ids))
        rows = (
            self._db()
            .execute(
                f"SELECT first_chunk, n_chunks FROM articles WHERE id IN ({marks})", article_ids
            )
            .fetchall()
        )
        parts = [np.arange(first, first + n, dtype=np.int64) for first, n in rows]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def chunk_ids_where(
        self,
        outlets: Sequence[str] = (),
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> np.ndarray:
        """Chunk ids of the articles from any of ``outlets`` (compared case-insensitively)
        published within ``since``..``until`` (inclusive; an undated article is in no range).

        Asked on every filtered question: one SQL query over the articles table rather than
        every source read into Python, and remembered for the generation's life (a chat keeps
        its filter for question after question).
        """
        key = (tuple(sorted(o.casefold() for o in outlets)), since, until)
        with self._filter_lock:
            cached = self._filtered.get(key)
        if cached is not None:
            return cached
        ids = self._query_chunk_ids(outlets, since, until)
        ids.flags.writeable = False
        with self._filter_lock:
            self._filtered[key] = ids
            while len(self._filtered) > FILTERS_REMEMBERED:
                self._filtered.pop(next(iter(self._filtered)))
        return ids

    def _query_chunk_ids(
        self, outlets: Sequence[str], since: dt.date | None, until: dt.date | None
    ) -> np.ndarray:
        clauses: list[str] = []
        args: list[str] = []
        if outlets:
            wanted = {o.casefold() for o in outlets}
            names = [name for name in self.outlets() if name.casefold() in wanted]
            if not names:
                return np.zeros(0, dtype=np.int64)
            clauses.append(f"outlet IN ({','.join('?' * len(names))})")
            args.extend(names)
        if since is not None or until is not None:
            clauses.append("date IS NOT NULL")
        if since is not None:
            clauses.append("date >= ?")
            args.append(since.isoformat())
        if until is not None:
            clauses.append("date <= ?")
            args.append(until.isoformat())
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT first_chunk, n_chunks FROM articles{where} ORDER BY first_chunk"
        rows = self._db().execute(query, args).fetchall()
        parts = [np.arange(first, first + n, dtype=np.int64) for first, n in rows]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def article(self, article_id: str) -> ArticleMeta | None:
        row = (
            self._db()
            .execute(f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = ?", (article_id,))
            .fetchone()
        )
        return _meta_from_row(row) if row else None

    def articles_by_id(self, article_ids: list[str]) -> dict[str, ArticleMeta]:
        if not article_ids:
            return {}
        marks = ",".join("?" * len(article_ids))
        rows = self._db().execute(
            f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id IN ({marks})", article_ids
        )
        return {r[0]: _meta_from_row(r) for r in rows}

    def article_text(self, article_id: str) -> str | None:
        row = self._db().execute("SELECT text FROM articles WHERE id = ?", (article_id,)).fetchone()
        return row[0] if row else None

    def sources(self) -> list[SourceInfo]:
        rows = self._db().execute(f"SELECT {ARTICLE_COLUMNS}, n_chunks FROM articles ORDER BY path")
        return [SourceInfo(_meta_from_row(r), int(r[10])) for r in rows]

    def outlets(self) -> list[str]:
        """The outlets named in this generation. Every question asks (to spot "according to
        TASS"), and a generation never changes, so the table is scanned once."""
        if self._outlets is None:
            rows = self._db().execute(
                "SELECT DISTINCT outlet FROM articles WHERE outlet IS NOT NULL"
            )
            self._outlets = sorted(r[0] for r in rows)
        return list(self._outlets)

    def undated_articles(self) -> int:
        """How many articles state no full date: a date filter cannot admit them, and the
        answer says so rather than let them vanish silently."""
        row = self._db().execute("SELECT COUNT(*) FROM articles WHERE date IS NULL").fetchone()
        return int(row[0])

    def summary(self) -> StoreSummary:
        return StoreSummary("faiss", str(self.path))

    def close(self) -> None:
        self._local.close_all()


class _ThreadLocalDB:
    """One read-only SQLite connection per thread: the bot answers from a thread pool."""

    def __init__(self, path: Path):
        self._path = path
        self._conns: dict[int, sqlite3.Connection] = {}
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing; run `qa-bot index --force` to rebuild")

    def get(self) -> sqlite3.Connection:
        key = threading.get_ident()
        conn = self._conns.get(key)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    f"file:{self._path}?mode=ro&immutable=1", uri=True, check_same_thread=False
                )
                conn.execute("SELECT 1 FROM articles LIMIT 1").fetchall()
            except sqlite3.DatabaseError as exc:
                raise IndexCorruptError(f"{self._path} is unreadable: {exc}") from exc
            self._conns[key] = conn
        return conn

    def close_all(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
