"""A build of the embedded (FAISS) index: a whole new generation assembled in memory.

Kept articles bring their passages and vectors from the previous generation (no model call),
new and changed ones bring fresh ones; :meth:`FaissBuild.commit` writes the generation next to
the live one and switches ``CURRENT`` (see :mod:`qa_bot.store`). Articles neither kept nor put
are simply not in the new generation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from qa_bot.chunking import lexical_text
from qa_bot.errors import IndexError_
from qa_bot.models import ArticleMeta, Chunk
from qa_bot.settings import RetrievalSettings
from qa_bot.store_api import FreshArticle

if TYPE_CHECKING:
    from qa_bot.store import FileRecord, IndexStore, Manifest, Snapshot


class FaissBuild:
    def __init__(
        self, store: IndexStore, previous: Snapshot | None, retrieval: RetrievalSettings
    ) -> None:
        self._store = store
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
        return self._store.write(manifest, articles, chunks, vectors, self._retrieval, lexical)

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
