"""A build of the index on Milvus: only what changed is written, and nothing shows early.

Why generations on rows, and not a collection per build or an alias switch: a build writes
only its new and changed articles, so the rows of unchanged ones must serve the old generation
and the new one alike. Each row therefore says which generation wrote it (``gen``) and which
retired it (``gone``, 0 while live), and readers of generation G see ``gen <= G and (gone == 0
or gone > G)``. Build G+1 then:

1. clears what an interrupted build left (rows with ``gen > G``; ``gone > G`` marks set back
   to 0), so every row is either part of G or invisible;
2. writes the passages and articles of new and changed files with ``gen = G+1`` (invisible
   to G: ``gen <= G`` fails);
3. marks the rows of changed and deleted files ``gone = G+1`` (still visible to G:
   ``gone > G``), flushes (the rows are persisted and sealed before anything points at
   them), and stores G+1's word statistics under keys of their own;
4. switches: one upsert of the ``CURRENT`` record to G+1. Single-row writes are atomic in
   Milvus, so a reader sees G or G+1 whole, never a half-written article;
5. deletes the rows G+1 no longer holds that only G-1 could still see (one generation of
   grace for a question already running, as the embedded store keeps one old folder), and
   epochs nobody reads.

A crash at any point before 4 leaves G exactly as it was (step 1 of the next build tidies
up); after 4, only the tidying of 5 is left for the next build. A full rebuild (another
model, chunker or tokenizer) does the same into a fresh epoch: new collections, switched to
by the same record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from qa_bot.errors import IndexError_, IndexWriteError, StoreUnavailableError
from qa_bot.milvus_client import CURRENT_KEY, PLACEHOLDER, MilvusConnection, text_parts
from qa_bot.milvus_rows import day_number, generation_name, read_record
from qa_bot.milvus_view import MilvusView
from qa_bot.store_api import FileRecord, FreshArticle, Manifest
from qa_bot.term_stats import TermStats, passage_terms

logger = logging.getLogger(__name__)

#: The dimension a passage without any indexed word carries in its sparse vector (Milvus
#: stores no empty sparse vector); no query ever asks for it.
NO_WORDS = 2**32 - 2


class MilvusBuild:
    """One build in progress (:class:`qa_bot.store_api.Build`); call with the lock held."""

    def __init__(self, conn: MilvusConnection, previous: MilvusView | None) -> None:
        self.conn = conn
        self.previous = previous
        self.base = previous.record if previous is not None else read_record(conn)
        self.base_number = int(self.base["generation"]) if self.base else 0
        self.number = self.base_number + 1
        self._fresh: list[FreshArticle] = []
        self._kept: dict[str, FileRecord] = {}
        self._epoch: int | None = None
        self._new_epoch = False

    def put(self, article: FreshArticle) -> None:
        self._fresh.append(article)

    def keep(self, record: FileRecord) -> None:
        if self.previous is None:
            raise IndexError_(f"{record.rel} cannot be kept: there is no previous index")
        self._kept[record.rel] = record

    # -- commit -------------------------------------------------------------------------------

    def commit(self, manifest: Manifest) -> str:
        try:
            return self._commit(manifest)
        except StoreUnavailableError:
            raise
        except IndexError_ as exc:
            raise IndexWriteError(
                f"{exc}; the build stopped, and the previous index is unchanged and in use"
            ) from exc

    def _commit(self, manifest: Manifest) -> str:
        previous = self.previous
        same_epoch = (
            previous is not None
            and previous.manifest.dimension == manifest.dimension
            and previous.manifest.chunking.get("tokenizer") == manifest.chunking.get("tokenizer")
        )
        base_epoch = int(self.base["epoch"]) if self.base else 0
        if same_epoch:
            assert previous is not None
            epoch, stats, next_id = base_epoch, previous.lexical.copy(), int(self.base["next_id"])  # type: ignore[index]
            self._epoch = epoch
            self._clear_leftovers()
            retired = self._retire_stats(stats)
            fresh = self._fresh
        else:
            epoch, stats, next_id, retired = base_epoch + 1, TermStats(), 0, []
            fresh = self._fresh + [self._copied(r) for r in self._kept.values()]
            self._epoch, self._new_epoch = epoch, True
            self.conn.create_epoch(epoch, manifest.dimension)
        self._write_fresh(epoch, fresh, stats, next_id)
        next_id += sum(len(a.chunks) for a in fresh)
        self._mark_retired(epoch, retired)
        for name in (self.conn.passages(epoch), self.conn.articles(epoch)):
            # Sealed and persisted before the switch points at them, and so searched through
            # their index rather than scanned (benchmarks/README.md, "Milvus against the
            # index folder"). One flush a build; the server rate-limits frequent ones.
            self.conn.call(f"flush {name}", self.conn.client.flush, name)
        parts = stats.to_parts()
        self.conn.put_meta({f"vocab:{self.number}:{i}": part for i, part in enumerate(parts)})
        record = self._record(manifest, epoch, base_epoch, same_epoch, next_id, fresh, retired)
        record["vocab_parts"] = len(parts)
        if self.conn.settings.milvus_settle_seconds:
            time.sleep(self.conn.settings.milvus_settle_seconds)
        self.conn.put_meta({CURRENT_KEY: json.dumps(record)})  # the switch
        self._tidy(epoch, record)
        return generation_name(self.number)

    def abort(self) -> None:
        """Take back what this build wrote, as far as the server lets us; whatever is left
        is invisible and the next build clears it."""
        if self._epoch is None:
            return
        with contextlib.suppress(Exception):
            if self._new_epoch:
                for name in (self.conn.passages(self._epoch), self.conn.articles(self._epoch)):
                    self.conn.client.drop_collection(name)
            else:
                self._clear_leftovers()

    # -- steps --------------------------------------------------------------------------------

    def _clear_leftovers(self) -> None:
        """Rows an interrupted build wrote (``gen`` above the live generation) go, and its
        ``gone`` marks are set back to 0."""
        assert self._epoch is not None
        g = self.base_number
        for name, key in (
            (self.conn.passages(self._epoch), "id"),
            (self.conn.articles(self._epoch), "key"),
        ):
            self.conn.call(
                f"clear {name}", self.conn.client.delete, collection_name=name, filter=f"gen > {g}"
            )
            marked = self.conn.query_all(name, f"gone > {g}", [key])
            self._set_gone(name, key, [r[key] for r in marked], 0)

    def _retire_stats(self, stats: TermStats) -> list[dict[str, Any]]:
        """The live article rows the new generation does not hold (changed or deleted
        files), with their passages' words taken out of ``stats``."""
        assert self.previous is not None
        live = self.previous._article_rows(
            [
                "key",
                "article_id",
                "path",
                "gen",
                "first_id",
                "n_chunks",
                "parts",
                "outlet",
                "day",
                "title",
            ]
        )
        retired = [r for r in live if str(r["path"]) not in self._kept]
        for row in retired:
            first, n = int(row["first_id"]), int(row["n_chunks"])
            for chunk in self.previous.chunks(list(range(first, first + n))).values():
                stats.remove(passage_terms(str(row["title"]), chunk.text))
        return retired

    def _copied(self, record: FileRecord) -> FreshArticle:
        """A kept article read back whole (a new epoch: another tokenizer)."""
        previous = self.previous
        assert previous is not None
        meta = previous.article(record.article_id)
        text = previous.article_text(record.article_id)
        ids = previous.chunk_ids_of([record.article_id]).tolist()
        if meta is None or text is None:
            raise IndexError_(f"{record.rel} is missing from the previous index")
        chunks = previous.chunks(ids)
        rows = self.conn.query_all(
            previous.passages, f"({previous.visible}) and id in {ids}", ["id", "dense"]
        )
        dense = {int(r["id"]): r["dense"] for r in rows}
        vectors = np.asarray([dense[i] for i in ids], dtype=np.float32).reshape(len(ids), -1)
        return FreshArticle(meta, text, record, [chunks[i] for i in ids], vectors)

    def _write_fresh(
        self, epoch: int, fresh: list[FreshArticle], stats: TermStats, next_id: int
    ) -> None:
        """Passages and articles of new and changed files, under the new generation."""
        tokens = [[passage_terms(a.meta.title, c.text) for c in a.chunks] for a in fresh]
        for own in tokens:
            for t in own:
                stats.add(t)
        passages: list[dict[str, Any]] = []
        articles: list[dict[str, Any]] = []
        for article, own in zip(fresh, tokens, strict=True):
            passages.extend(self._passage_rows(article, own, stats, next_id))
            articles.extend(self._article_rows(article, next_id))
            next_id += len(article.chunks)
        self._insert(self.conn.passages(epoch), passages)
        self._insert(self.conn.articles(epoch), articles)

    def _passage_rows(
        self, article: FreshArticle, tokens: list[list[str]], stats: TermStats, first: int
    ) -> list[dict[str, Any]]:
        meta = article.meta
        rows = []
        for i, (chunk, words) in enumerate(zip(article.chunks, tokens, strict=True)):
            rows.append(
                {
                    "id": first + i,
                    "gen": self.number,
                    "gone": 0,
                    "article_id": meta.id,
                    "ordinal": chunk.ordinal,
                    "start": chunk.start,
                    "end": chunk.end,
                    "day": day_number(meta.date),
                    "text": chunk.text,
                    "outlet": meta.outlet or "",
                    "dense": np.asarray(article.vectors[i], dtype=np.float32),
                    "sparse": stats.passage_vector(words) or {NO_WORDS: 1.0},
                }
            )
        return rows

    def _article_rows(self, article: FreshArticle, first: int) -> list[dict[str, Any]]:
        meta, record = article.meta, replace(article.record, chunks=len(article.chunks))
        parts = text_parts(article.text)
        empty = {
            "path": "", "outlet": "", "date_text": "", "url": "", "content_hash": "",
            "digest": "", "title": "", "parts": 0, "day": 0, "first_id": 0, "n_chunks": 0,
            "size": 0, "mtime_ns": 0, "stated_start": -1, "stated_end": -1,
        }  # fmt: skip
        head = {
            "path": meta.path,
            "outlet": meta.outlet or "",
            "date_text": meta.date_text or "",
            "url": meta.url or "",
            "content_hash": meta.content_hash,
            "digest": record.digest,
            "title": meta.title,
            "parts": len(parts),
            "day": day_number(meta.date),
            "first_id": first,
            "n_chunks": record.chunks,
            "size": record.size,
            "mtime_ns": record.mtime_ns,
            "stated_start": meta.stated_span[0] if meta.stated_span else -1,
            "stated_end": meta.stated_span[1] if meta.stated_span else -1,
        }
        return [
            {
                **(head if n == 0 else empty),
                "key": f"{meta.id}@{self.number}#{n}",
                "gen": self.number,
                "gone": 0,
                "article_id": meta.id,
                "part": n,
                "text": part,
                "v": PLACEHOLDER,
            }
            for n, part in enumerate(parts)
        ]

    def _insert(self, collection: str, rows: list[dict[str, Any]]) -> None:
        size = self.conn.settings.milvus_batch_rows
        for i in range(0, len(rows), size):
            self.conn.call(
                f"write {collection}",
                self.conn.client.insert,
                collection_name=collection,
                data=rows[i : i + size],
            )

    def _mark_retired(self, epoch: int, retired: list[dict[str, Any]]) -> None:
        ids = [
            i
            for r in retired
            for i in range(int(r["first_id"]), int(r["first_id"]) + int(r["n_chunks"]))
        ]
        keys = [
            f"{r['article_id']}@{r['gen']}#{n}" for r in retired for n in range(int(r["parts"]))
        ]
        self._set_gone(self.conn.passages(epoch), "id", ids, self.number)
        self._set_gone(self.conn.articles(epoch), "key", keys, self.number)

    def _set_gone(self, collection: str, key: str, values: list[Any], gone: int) -> None:
        rows = [{key: v, "gone": gone} for v in values]
        size = self.conn.settings.milvus_batch_rows
        for i in range(0, len(rows), size):
            self.conn.call(
                f"retire rows of {collection}",
                self.conn.client.upsert,
                collection_name=collection,
                data=rows[i : i + size],
                partial_update=True,
            )

    def _record(
        self,
        manifest: Manifest,
        epoch: int,
        base_epoch: int,
        same_epoch: bool,
        next_id: int,
        fresh: list[FreshArticle],
        retired: list[dict[str, Any]],
    ) -> dict[str, Any]:
        outlets: Counter[str] = Counter(
            self.base.get("outlets", {}) if same_epoch and self.base else {}
        )
        undated = int(self.base.get("undated", 0)) if same_epoch and self.base else 0
        for row in retired:
            if row["outlet"]:
                outlets[str(row["outlet"])] -= 1
            undated -= int(row["day"]) == 0
        for article in fresh:
            if article.meta.outlet:
                outlets[article.meta.outlet] += 1
            undated += article.meta.date is None
        info = asdict(manifest)
        del info["files"]
        info["dense_kind"] = f"milvus {self.conn.dense_index()[0]}"
        return {
            "generation": self.number,
            "epoch": epoch,
            "previous_epoch": None if same_epoch else (base_epoch or None),
            "next_id": next_id,
            "outlets": {k: v for k, v in sorted(outlets.items()) if v > 0},
            "undated": undated,
            "manifest": info,
        }

    def _tidy(self, epoch: int, record: dict[str, Any]) -> None:
        """After the switch: rows and statistics only generations before the previous one
        could see, and epochs no generation reads. A failure here costs space, not answers."""
        try:
            g = self.base_number
            for name in (self.conn.passages(epoch), self.conn.articles(epoch)):
                self.conn.call(
                    f"tidy {name}",
                    self.conn.client.delete,
                    collection_name=name,
                    filter=f"gone > 0 and gone <= {g}",
                )
            old = self.conn.query_all(self.conn.meta, 'key like "vocab:%"', ["key"])
            stale = [r["key"] for r in old if int(str(r["key"]).split(":")[1]) < g]
            if stale:
                self.conn.call(
                    "tidy statistics",
                    self.conn.client.delete,
                    collection_name=self.conn.meta,
                    ids=stale,
                )
            keep = {self.conn.passages(e) for e in (epoch, record["previous_epoch"]) if e}
            keep |= {self.conn.articles(e) for e in (epoch, record["previous_epoch"]) if e}
            prefix = f"{self.conn.prefix}_e"
            names = self.conn.call("list collections", self.conn.client.list_collections)
            for name in names:
                if name.startswith(prefix) and name not in keep:
                    self.conn.call(f"drop {name}", self.conn.client.drop_collection, name)
        except IndexError_ as exc:
            logger.warning("the index is switched, but tidying up after it failed: %s", exc)
