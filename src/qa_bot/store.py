"""The index on disk: immutable generations switched atomically.

Layout of ``embeddings/``::

    CURRENT              name of the live generation (replaced with os.replace)
    gen-000003/          one complete, self-describing index
        manifest.json    format version, model id, dimension, chunker settings, per-file hashes
        meta.sqlite      articles and chunks (row id = vector row)
        dense.faiss      the FAISS index over the chunk vectors (row = chunk id); flat and
                         HNSW indexes hold the vectors whole and are their only copy
        vectors.npy      float32 (chunks x dimension), only beside an IVF index (whose lists
                         do not keep rows in order); memory-mapped on load
        lexical/         the BM25 index
    .lock                held by the one process that is writing

A build writes a whole new generation next to the live one and only then points CURRENT at it,
so a crash, a full disk or Ctrl-C at any moment leaves the previous index live and intact, and
readers (the bot, ``qa-bot chat``) keep answering from the generation they opened until they
see CURRENT change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa_bot import text as text_module
from qa_bot.chunking import lexical_text
from qa_bot.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    IndexWriteError,
)
from qa_bot.files import atomic_write_text
from qa_bot.filters import SearchFilters
from qa_bot.lexical import LexicalIndex
from qa_bot.models import ArticleMeta, Chunk, SourceInfo
from qa_bot.settings import RetrievalSettings
from qa_bot.store_api import Candidates, StoreSummary
from qa_bot.vector_index import VectorIndex

if TYPE_CHECKING:
    from qa_bot.store_build import FaissBuild

#: The layout of a generation's files and tables. 2: each article's ``stated_span``. An index
#: in another format is rebuilt by the next ``qa-bot index`` (or ``ask``, the bot).
FORMAT_VERSION = 2
#: Filters (outlets and dates) whose chunk ids a generation keeps at hand.
FILTERS_REMEMBERED = 64
CURRENT = "CURRENT"
LOCK = ".lock"


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


_SCHEMA = """
CREATE TABLE articles (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL, outlet TEXT, date TEXT,
    date_text TEXT, url TEXT, content_hash TEXT NOT NULL, stated_start INTEGER,
    stated_end INTEGER, text TEXT NOT NULL, first_chunk INTEGER NOT NULL, n_chunks INTEGER NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, article_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX chunks_article ON chunks(article_id, ordinal);
"""

_ARTICLE_COLUMNS = (
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
        from qa_bot.store_search import faiss_candidates

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
            .execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE id = ?", (article_id,))
            .fetchone()
        )
        return _meta_from_row(row) if row else None

    def articles_by_id(self, article_ids: list[str]) -> dict[str, ArticleMeta]:
        if not article_ids:
            return {}
        marks = ",".join("?" * len(article_ids))
        rows = self._db().execute(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE id IN ({marks})", article_ids
        )
        return {r[0]: _meta_from_row(r) for r in rows}

    def article_text(self, article_id: str) -> str | None:
        row = self._db().execute("SELECT text FROM articles WHERE id = ?", (article_id,)).fetchone()
        return row[0] if row else None

    def sources(self) -> list[SourceInfo]:
        rows = self._db().execute(
            f"SELECT {_ARTICLE_COLUMNS}, n_chunks FROM articles ORDER BY path"
        )
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


class IndexStore:
    """Finds, opens and writes generations under one index folder."""

    def __init__(self, root: Path):
        self.root = root
        self.location = f"{root}"

    def begin(self, previous: Snapshot | None, retrieval: RetrievalSettings) -> FaissBuild:
        """A build of a whole new generation (see :mod:`qa_bot.store_build`)."""
        from qa_bot.store_build import FaissBuild

        return FaissBuild(self, previous, retrieval)

    def refresh_records(self, view: Snapshot, records: Mapping[str, FileRecord]) -> None:
        """Rewrite the live manifest's records of files touched but unchanged (new sizes and
        modification times): the generation's content is the same, so it stays in place."""
        manifest = _with(view.manifest, files=dict(sorted(records.items())))
        atomic_write_text(view.path / "manifest.json", manifest.to_json())

    def current(self) -> str | None:
        try:
            name = (self.root / CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {self.root / CURRENT}: {exc}") from exc
        return name or None

    def read_manifest(self, generation: str | None = None) -> Manifest:
        generation = generation or self.current()
        if generation is None:
            raise IndexMissingError(f"no index in {self.root}; run `qa-bot index` to build it")
        path = self.root / generation / "manifest.json"
        try:
            manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexCorruptError(
                f"{path} is missing; run `qa-bot index --force` to rebuild"
            ) from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise IndexCorruptError(
                f"{path} is corrupted ({exc}); run `qa-bot index --force` to rebuild"
            ) from exc
        if manifest.format_version != FORMAT_VERSION:
            raise IndexMismatchError(format_message(manifest.format_version, str(self.root)))
        return manifest

    def open(self, retrieval: RetrievalSettings) -> Snapshot:
        generation = self.current()
        manifest = self.read_manifest(generation)
        assert generation is not None
        try:
            return Snapshot(self.root / generation, manifest, retrieval)
        except IndexCorruptError as exc:
            if "qa-bot index" in str(exc):
                raise
            raise IndexCorruptError(
                f"{exc}; run `qa-bot index` to rebuild (the damaged index is replaced)"
            ) from exc

    @contextlib.contextmanager
    def lock(self, *, wait: float = 0.0) -> Iterator[None]:
        """Only one writer at a time; a second ``qa-bot index`` waits ``wait`` s, then refuses."""
        from filelock import FileLock, Timeout

        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexWriteError(f"cannot create {self.root}: {exc.strerror or exc}") from exc
        lock = FileLock(str(self.root / LOCK))
        try:
            lock.acquire(timeout=wait)
        except Timeout as exc:
            raise IndexLockedError(
                f"another `qa-bot index` is updating {self.root}; try again when it is done"
            ) from exc
        except OSError as exc:
            raise IndexWriteError(f"cannot lock {self.root}: {exc.strerror or exc}") from exc
        try:
            yield
        finally:
            lock.release()

    def _next_generation(self) -> str:
        numbers = [int(p.name[4:]) for p in self.root.glob("gen-*") if p.name[4:].isdigit()]
        return f"gen-{max(numbers, default=0) + 1:06d}"

    def write(
        self,
        manifest: Manifest,
        articles: list[tuple[ArticleMeta, str, int, int]],
        chunks: list[Chunk],
        vectors: np.ndarray,
        retrieval: RetrievalSettings,
        lexical_texts: list[str],
    ) -> str:
        """Write a complete new generation and make it current. Call with the lock held."""
        generation = self._next_generation()
        final = self.root / generation
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        except OSError as exc:
            raise IndexWriteError(
                f"cannot write to {self.root}: {exc.strerror or exc}; the old index is unchanged"
            ) from exc
        try:
            _write_sqlite(tmp / "meta.sqlite", articles, chunks)
            dense = VectorIndex.build(vectors, retrieval)
            dense.save(tmp / "dense.faiss")
            if dense.stored_vectors() is None:
                np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
            LexicalIndex.build(lexical_texts).save(tmp / "lexical")
            manifest = _with(manifest, dense_kind=dense.kind)
            (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
            _fsync_tree(tmp)
            os.replace(tmp, final)
            atomic_write_text(self.root / CURRENT, generation + "\n")
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if final.exists() and self.current() != generation:
                shutil.rmtree(final, ignore_errors=True)
            raise IndexWriteError(
                f"writing the index failed ({exc.strerror or exc}); the previous index is "
                "unchanged and still in use"
            ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._collect_garbage(keep=generation)
        return generation

    def _collect_garbage(self, keep: str) -> None:
        """Drop old generations and leftovers of interrupted builds.

        The generation just replaced is kept one round, so a reader that opened it a moment
        ago (the bot mid-answer) can finish; anything older goes.
        """
        generations = sorted(p for p in self.root.glob("gen-*") if p.is_dir())
        keep_set = {keep}
        older = [p.name for p in generations if p.name < keep]
        if older:
            keep_set.add(older[-1])
        for path in generations:
            if path.name not in keep_set:
                shutil.rmtree(path, ignore_errors=True)
        for path in self.root.glob(".tmp-*"):
            shutil.rmtree(path, ignore_errors=True)


def format_message(found: object, location: str) -> str:
    """Why an index in another format is not read, and what to do: one message for both
    stores."""
    return (
        f"the index in {location} is in format {found}, and this version of qa-bot reads "
        f"format {FORMAT_VERSION}; run `qa-bot index` to rebuild it"
    )


def _with(manifest: Manifest, **changes: Any) -> Manifest:
    from dataclasses import replace

    return replace(manifest, **changes)


def _write_sqlite(
    path: Path, articles: list[tuple[ArticleMeta, str, int, int]], chunks: list[Chunk]
) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(_SCHEMA)
        conn.executemany(
            "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    m.id,
                    m.path,
                    m.title,
                    m.outlet,
                    m.date.isoformat() if m.date else None,
                    m.date_text,
                    m.url,
                    m.content_hash,
                    *(m.stated_span or (None, None)),
                    text,
                    first,
                    n,
                )
                for m, text, first, n in articles
            ],
        )
        conn.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?)",
            [(i, c.article_id, c.ordinal, c.start, c.end, c.text) for i, c in enumerate(chunks)],
        )
        conn.commit()
    except sqlite3.Error as exc:
        raise OSError(f"SQLite: {exc}") from exc
    finally:
        conn.close()


def _fsync_tree(folder: Path) -> None:
    for item in folder.rglob("*"):
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
