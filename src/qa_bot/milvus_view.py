"""The index on Milvus: the same generations and questions as the embedded store, on a server.

What a reader sees is decided by one record, ``CURRENT`` in ``P_meta``: the generation G, the
epoch (set of data collections) it lives in, and its counts. Every row carries the generation
that wrote it (``gen``) and the one that retired it (``gone``, 0 while live), and a reader of
G asks only for rows with ``gen <= G and (gone == 0 or gone > G)``: rows a running build writes
or retires are invisible to it until the build replaces ``CURRENT`` (one upsert of one row,
atomic on the server), and a question started on G keeps answering from G (see
:mod:`qa_bot.milvus_build` for the writing side).

Questions take one round trip each for the record (a switch is seen at the next question, as
``CURRENT`` is for the embedded store), the dense search, the sparse (BM25) search and the
passages and articles around the result; the word statistics of a generation are read once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qa_bot.errors import IndexCorruptError, IndexMismatchError
from qa_bot.filters import SearchFilters
from qa_bot.milvus_client import MilvusConnection, literal
from qa_bot.milvus_rows import (
    ARTICLE_FIELDS,
    CHUNK_FIELDS,
    batches,
    chunk_from_row,
    day_number,
    generation_name,
    meta_from_row,
    visible,
)
from qa_bot.models import ArticleMeta, Chunk, SourceInfo
from qa_bot.store_api import (
    FORMAT_VERSION,
    Candidates,
    FileRecord,
    Manifest,
    StoreSummary,
    format_message,
)
from qa_bot.term_stats import TermStats, passage_terms

#: Passages and articles a view keeps at hand (a question reads the same ones several times).
REMEMBERED = 4096
#: Article texts a view keeps at hand (they can be long).
TEXTS_REMEMBERED = 32


class MilvusView:
    """One generation on Milvus, opened for reading (:class:`qa_bot.store_api.IndexView`)."""

    def __init__(self, conn: MilvusConnection, record: dict[str, Any]) -> None:
        self.conn = conn
        self.record = record
        self.number = int(record["generation"])
        self.generation = generation_name(self.number)
        self.epoch = int(record["epoch"])
        self.passages = conn.passages(self.epoch)
        self.articles = conn.articles(self.epoch)
        self.visible = visible(self.number)
        self._consistency = conn.settings.milvus_consistency
        self._manifest: Manifest | None = None
        self._lexical = self._load_stats()
        self._chunks: dict[int, Chunk] = {}
        self._metas: dict[str, ArticleMeta] = {}
        self._tokens: dict[int, list[str]] = {}
        self._texts: OrderedDict[str, str | None] = OrderedDict()
        self._cache_lock = threading.Lock()
        info = record.get("manifest", {})
        if info.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(format_message(info.get("format_version"), conn.location))

    def _load_stats(self) -> TermStats:
        keys = [f"vocab:{self.number}:{i}" for i in range(int(self.record["vocab_parts"]))]
        rows = self.conn.call(
            "read the word statistics",
            self.conn.client.get,
            collection_name=self.conn.meta,
            ids=keys,
            output_fields=["data"],
        )
        by_key = {r["key"]: r["data"] for r in rows}
        try:
            return TermStats.from_parts([by_key[k] for k in keys])
        except (KeyError, ValueError) as exc:
            raise IndexCorruptError(
                f"the word statistics of {self.generation} in {self.conn.location} are "
                f"missing or damaged ({exc}); run `qa-bot index --force` to rebuild"
            ) from exc

    # -- what the generation is ---------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        """The record's build facts with the file record of every article (read once)."""
        if self._manifest is None:
            info = dict(self.record["manifest"])
            files = {
                str(r["path"]): FileRecord(
                    rel=str(r["path"]),
                    digest=str(r["digest"]),
                    size=int(r["size"]),
                    mtime_ns=int(r["mtime_ns"]),
                    article_id=str(r["article_id"]),
                    chunks=int(r["n_chunks"]),
                )
                for r in self._article_rows(
                    ["path", "digest", "size", "mtime_ns", "article_id", "n_chunks"]
                )
            }
            self._manifest = Manifest(files=dict(sorted(files.items())), **info)
        return self._manifest

    @property
    def n_chunks(self) -> int:
        return int(self.record["manifest"]["chunks"])

    @property
    def lexical(self) -> TermStats:
        return self._lexical

    def outlets(self) -> list[str]:
        return sorted(self.record.get("outlets", {}))

    def undated_articles(self) -> int:
        return int(self.record.get("undated", 0))

    def summary(self) -> StoreSummary:
        rows = self.conn.call(
            "count rows",
            self.conn.client.query,
            collection_name=self.passages,
            filter="",
            output_fields=["count(*)"],
        )
        stored = int(rows[0]["count(*)"]) if rows else 0
        kind, _ = self.conn.dense_index()
        return StoreSummary(
            "milvus",
            f"{self.conn.settings.milvus_uri} ({self.conn.settings.milvus_database})",
            (
                ("collections", f"{self.passages}, {self.articles}, {self.conn.meta}"),
                ("milvus_index", f"{kind} (inner product) + SPARSE_INVERTED_INDEX"),
                ("passage_rows", str(stored)),
                ("rows_retired", str(stored - self.n_chunks)),
                ("words", str(len(self._lexical.ids))),
                ("consistency", self._consistency),
            ),
        )

    def close(self) -> None:
        with self._cache_lock:
            self._chunks.clear()
            self._metas.clear()
            self._tokens.clear()
            self._texts.clear()

    # -- questions ----------------------------------------------------------------------------

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
        """See :meth:`qa_bot.store_api.IndexView.candidates`: the engine finds them, the
        cosine and the BM25 score of each are computed here, as the embedded store does."""
        expr = self._filter(filters)
        if expr is None:
            return Candidates.none()
        qv = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        weights = self._lexical.query_weights(terms, extra_terms, extra_weight)
        sparse = self._lexical.query_vector(weights)
        # The two searches are independent: sent together, the engine runs them side by side.
        by_words = (
            self.conn.searches.submit(
                self._search, "sparse", sparse, k, expr, [*CHUNK_FIELDS, "dense"]
            )
            if sparse
            else None
        )
        found: dict[int, dict[str, Any]] = {}
        dense: dict[int, float] = {}
        for hit in self._search("dense", qv.tolist(), k, expr, CHUNK_FIELDS):
            found[int(hit["id"])] = hit["entity"]
            dense[int(hit["id"])] = float(hit["distance"])
        for hit in by_words.result() if by_words is not None else ():
            pid = int(hit["id"])
            if pid not in dense:
                found[pid] = hit["entity"]
                dense[pid] = float(np.asarray(hit["entity"]["dense"], np.float32) @ qv)
        if not found:
            return Candidates.none()
        ids = np.array(sorted(found), dtype=np.int64)
        self._remember_chunks({pid: chunk_from_row(row) for pid, row in found.items()})
        scores = self._lexical.scores([self._words(int(i)) for i in ids], weights)
        top = float(scores.max()) if scores.size else 0.0
        lexical = scores / top if top > 0 else np.zeros(len(ids), dtype=np.float32)
        return Candidates(ids, np.array([dense[int(i)] for i in ids], np.float32), lexical)

    def _words(self, passage_id: int) -> list[str]:
        """A passage's words as the word index counts them (title included), kept at hand."""
        with self._cache_lock:
            words = self._tokens.get(passage_id)
        if words is None:
            chunk = self.chunks([passage_id])[passage_id]
            meta = self.article(chunk.article_id)
            words = passage_terms(meta.title if meta else "", chunk.text)
            with self._cache_lock:
                if len(self._tokens) > REMEMBERED:
                    self._tokens.clear()
                self._tokens[passage_id] = words
        return words

    def _search(
        self, field: str, data: object, k: int, expr: str, fields: list[str]
    ) -> list[dict[str, Any]]:
        params = (
            self.conn.search_params(k) if field == "dense" else {"metric_type": "IP", "params": {}}
        )
        result = self.conn.call(
            f"search {self.passages}",
            self.conn.client.search,
            collection_name=self.passages,
            data=[data],
            anns_field=field,
            limit=k,
            filter=expr,
            output_fields=fields,
            search_params=params,
            consistency_level=self._consistency,
        )
        return list(result[0]) if result else []

    def _filter(self, filters: SearchFilters | None) -> str | None:
        """The rows a question may see, or None when the filters admit none."""
        clauses = [self.visible]
        if filters is not None and filters.outlets:
            wanted = {o.casefold() for o in filters.outlets}
            names = [n for n in self.outlets() if n.casefold() in wanted]
            if not names:
                return None
            clauses.append("outlet in [" + ", ".join(literal(n) for n in names) + "]")
        if filters is not None and (filters.since or filters.until):
            clauses.append("day > 0")
            if filters.since:
                clauses.append(f"day >= {day_number(filters.since)}")
            if filters.until:
                clauses.append(f"day <= {day_number(filters.until)}")
        return " and ".join(f"({c})" for c in clauses)

    # -- passages and articles ----------------------------------------------------------------

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        wanted = sorted({int(i) for i in ids if int(i) >= 0})
        with self._cache_lock:
            out = {i: self._chunks[i] for i in wanted if i in self._chunks}
        missing = [i for i in wanted if i not in out]
        if missing:
            rows = self._query(self.passages, f"({self.visible}) and id in {missing}", CHUNK_FIELDS)
            fetched = {int(r["id"]): chunk_from_row(r) for r in rows}
            self._remember_chunks(fetched)
            out.update(fetched)
        return out

    def vectors_of(self, ids: list[int]) -> np.ndarray:
        """See :meth:`qa_bot.store_api.IndexView.vectors_of`: read back from the collection."""
        wanted = [int(i) for i in ids]
        if not wanted:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        rows = self._query(self.passages, f"({self.visible}) and id in {wanted}", ["id", "dense"])
        by_id = {int(r["id"]): np.asarray(r["dense"], dtype=np.float32) for r in rows}
        return np.stack([by_id[i] for i in wanted])

    def chunk_ids_of(self, article_ids: list[str]) -> np.ndarray:
        if not article_ids:
            return np.zeros(0, dtype=np.int64)
        rows = self._article_rows(["first_id", "n_chunks"], article_ids)
        parts = [
            np.arange(int(r["first_id"]), int(r["first_id"]) + int(r["n_chunks"]), dtype=np.int64)
            for r in sorted(rows, key=lambda r: int(r["first_id"]))
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def article(self, article_id: str) -> ArticleMeta | None:
        return self.articles_by_id([article_id]).get(article_id)

    def articles_by_id(self, article_ids: list[str]) -> dict[str, ArticleMeta]:
        with self._cache_lock:
            out = {a: self._metas[a] for a in article_ids if a in self._metas}
        missing = [a for a in dict.fromkeys(article_ids) if a not in out]
        if missing:
            fetched = {
                m.id: m for m in map(meta_from_row, self._article_rows(ARTICLE_FIELDS, missing))
            }
            with self._cache_lock:
                if len(self._metas) > REMEMBERED:
                    self._metas.clear()
                self._metas.update(fetched)
            out.update(fetched)
        return out

    def article_text(self, article_id: str) -> str | None:
        """The article's text, put together from its parts; the last few are kept at hand
        (an answer reads its articles' texts several times)."""
        with self._cache_lock:
            if article_id in self._texts:
                self._texts.move_to_end(article_id)
                return self._texts[article_id]
        expr = f"({self.visible}) and article_id == {literal(article_id)}"
        rows = self._query(self.articles, expr, ["part", "text"])
        text = (
            "".join(str(r["text"]) for r in sorted(rows, key=lambda r: int(r["part"])))
            if rows
            else None
        )
        with self._cache_lock:
            self._texts[article_id] = text
            while len(self._texts) > TEXTS_REMEMBERED:
                self._texts.popitem(last=False)
        return text

    def article_keys(self, article_ids: list[str]) -> dict[str, str]:
        """The key of each live article's first row (where its metadata is)."""
        return {
            str(r["article_id"]): str(r["key"])
            for r in self._article_rows(["key", "article_id"], article_ids)
        }

    def sources(self) -> list[SourceInfo]:
        rows = self._article_rows([*ARTICLE_FIELDS, "n_chunks"])
        return sorted(
            (SourceInfo(meta_from_row(r), int(r["n_chunks"])) for r in rows),
            key=lambda s: s.meta.path,
        )

    def _article_rows(
        self, fields: list[str], article_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        expr = f"({self.visible}) and part == 0"
        if article_ids is None:
            return self.conn.query_all(self.articles, expr, fields)
        rows: list[dict[str, Any]] = []
        for batch in batches(list(article_ids), 500):
            names = ", ".join(literal(a) for a in batch)
            rows.extend(self._query(self.articles, f"{expr} and article_id in [{names}]", fields))
        return rows

    def _query(self, collection: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        rows = self.conn.call(
            f"read {collection}",
            self.conn.client.query,
            collection_name=collection,
            filter=expr,
            output_fields=fields,
            consistency_level=self._consistency,
        )
        return [dict(r) for r in rows]

    def _remember_chunks(self, chunks: Mapping[int, Chunk]) -> None:
        with self._cache_lock:
            if len(self._chunks) > REMEMBERED:
                self._chunks.clear()
            self._chunks.update(chunks)
