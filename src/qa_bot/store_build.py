"""A build of the embedded (FAISS) index: a whole new generation assembled in memory, then
written next to the live one.

Kept articles bring their passages and vectors from the previous generation (no model call),
new and changed ones bring fresh ones; :meth:`FaissBuild.commit` writes the generation in a
hidden folder, renames it into place and switches ``CURRENT`` (:func:`write_generation`; the
layout is in :mod:`qa_bot.store`). Articles neither kept nor put are simply not in the new
generation.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa_bot.chunking import lexical_text
from qa_bot.errors import IndexError_, IndexWriteError
from qa_bot.files import atomic_write_text
from qa_bot.lexical import LexicalIndex
from qa_bot.models import ArticleMeta, Chunk
from qa_bot.settings import RetrievalSettings
from qa_bot.store_api import FileRecord, FreshArticle, Manifest
from qa_bot.store_snapshot import Snapshot
from qa_bot.vector_index import VectorIndex

#: The file naming the live generation, replaced atomically by a build's last step.
CURRENT = "CURRENT"

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


class FaissBuild:
    """A new generation under ``root``, over ``previous`` (None: from nothing)."""

    def __init__(self, root: Path, previous: Snapshot | None, retrieval: RetrievalSettings) -> None:
        self._root = root
        self._previous = previous
        self._retrieval = retrieval
        self._items: dict[str, FreshArticle | FileRecord] = {}

    def put(self, article: FreshArticle) -> None:
        self._items[article.record.rel] = article

    def keep(self, record: FileRecord) -> None:
        if self._previous is None:
            raise IndexError_(f"{record.rel} cannot be kept: there is no previous index")
        self._items[record.rel] = record

    def abort(self) -> None:
        self._items.clear()

    def commit(self, manifest: Manifest) -> str:
        """Write the generation, articles in path order (ids follow it), and make it current."""
        articles: list[tuple[ArticleMeta, str, int, int]] = []
        chunks: list[Chunk] = []
        lexical: list[str] = []
        vector_parts: list[np.ndarray] = []
        records: dict[str, FileRecord] = {}
        for rel in sorted(self._items):
            item = self._items[rel]
            first = len(chunks)
            if isinstance(item, FreshArticle):
                meta, text, own, vectors = item.meta, item.text, item.chunks, item.vectors
                records[rel] = replace(item.record, chunks=len(own))
            else:
                meta, text, own, vectors = self._kept(item)
                records[rel] = item
            vector_parts.append(np.asarray(vectors, dtype=np.float32))
            chunks.extend(own)
            lexical.extend(lexical_text(meta.title, c.text) for c in own)
            articles.append((meta, text, first, len(own)))
        vectors = (
            np.concatenate(vector_parts)
            if vector_parts
            else np.zeros((0, manifest.dimension), np.float32)
        )
        manifest = replace(manifest, files=records, chunks=len(chunks))
        return write_generation(
            self._root, manifest, articles, chunks, vectors, self._retrieval, lexical
        )

    def _kept(self, record: FileRecord) -> tuple[ArticleMeta, str, list[Chunk], np.ndarray]:
        previous = self._previous
        assert previous is not None
        meta = previous.article(record.article_id)
        text = previous.article_text(record.article_id)
        if meta is None or text is None:
            raise IndexError_(f"{record.rel} is missing from the previous index")
        ids = previous.chunk_ids_of([record.article_id])
        old_chunks = previous.chunks(ids.tolist())
        own = [old_chunks[int(i)] for i in ids]
        return meta, text, own, np.asarray(previous.vectors[ids], dtype=np.float32)


def write_generation(
    root: Path,
    manifest: Manifest,
    articles: list[tuple[ArticleMeta, str, int, int]],
    chunks: list[Chunk],
    vectors: np.ndarray,
    retrieval: RetrievalSettings,
    lexical_texts: list[str],
) -> str:
    """Write a complete new generation under ``root`` and make it current; returns its name.
    Call with the store's lock held."""
    generation = _next_generation(root)
    final = root / generation
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError as exc:
        raise IndexWriteError(
            f"cannot write to {root}: {exc.strerror or exc}; the old index is unchanged"
        ) from exc
    try:
        _write_sqlite(tmp / "meta.sqlite", articles, chunks)
        dense = VectorIndex.build(vectors, retrieval)
        dense.save(tmp / "dense.faiss")
        if dense.stored_vectors() is None:
            np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        LexicalIndex.build(lexical_texts).save(tmp / "lexical")
        manifest = replace(manifest, dense_kind=dense.kind)
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        _fsync_tree(tmp)
        os.replace(tmp, final)
        atomic_write_text(root / CURRENT, generation + "\n")
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if final.exists() and _current(root) != generation:
            shutil.rmtree(final, ignore_errors=True)
        raise IndexWriteError(
            f"writing the index failed ({exc.strerror or exc}); the previous index is "
            "unchanged and still in use"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _collect_garbage(root, keep=generation)
    return generation


def _current(root: Path) -> str | None:
    try:
        return (root / CURRENT).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _next_generation(root: Path) -> str:
    numbers = [int(p.name[4:]) for p in root.glob("gen-*") if p.name[4:].isdigit()]
    return f"gen-{max(numbers, default=0) + 1:06d}"


def _collect_garbage(root: Path, keep: str) -> None:
    """Drop old generations and leftovers of interrupted builds.

    The generation just replaced is kept one round, so a reader that opened it a moment
    ago (the bot mid-answer) can finish; anything older goes.
    """
    generations = sorted(p for p in root.glob("gen-*") if p.is_dir())
    keep_set = {keep}
    older = [p.name for p in generations if p.name < keep]
    if older:
        keep_set.add(older[-1])
    for path in generations:
        if path.name not in keep_set:
            shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


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
