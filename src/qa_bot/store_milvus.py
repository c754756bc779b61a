"""The index on Milvus as a :class:`qa_bot.store_api.Store`: finding the current generation,
opening it (:mod:`qa_bot.milvus_view`), the build lock, and builds (:mod:`qa_bot.milvus_build`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from qa_bot.errors import IndexMissingError
from qa_bot.milvus_build import MilvusBuild
from qa_bot.milvus_client import MilvusConnection
from qa_bot.milvus_rows import generation_name, read_record
from qa_bot.milvus_view import MilvusView
from qa_bot.settings import RetrievalSettings, StoreSettings
from qa_bot.store_api import FileRecord, Manifest


class MilvusStore:
    """The :class:`qa_bot.store_api.Store` on a Milvus server (or milvus-lite)."""

    def __init__(self, settings: StoreSettings, retrieval: RetrievalSettings) -> None:
        self.conn = MilvusConnection(settings, retrieval)
        self.location = self.conn.location

    def current(self) -> str | None:
        record = read_record(self.conn)
        return generation_name(int(record["generation"])) if record else None

    def read_manifest(self, generation: str | None = None) -> Manifest:
        return self.open(self.conn.retrieval).manifest

    def open(self, retrieval: RetrievalSettings) -> MilvusView:
        record = read_record(self.conn)
        if record is None:
            raise IndexMissingError(f"no index in {self.location}; run `qa-bot index` to build it")
        return MilvusView(self.conn, record)

    def lock(self, *, wait: float = 0.0) -> contextlib.AbstractContextManager[None]:
        return self.conn.lock(wait=wait)

    def begin(self, previous: MilvusView | None, retrieval: RetrievalSettings) -> MilvusBuild:
        return MilvusBuild(self.conn, previous)

    def refresh_records(self, view: MilvusView, records: Mapping[str, FileRecord]) -> None:
        """New sizes and modification times of unchanged files, written into their live
        article rows (file facts only: what questions read is not touched)."""
        old = view.manifest.files
        keys = view.article_keys([r.article_id for r in records.values()])
        rows = [
            {"key": keys[r.article_id], "size": r.size, "mtime_ns": r.mtime_ns}
            for rel, r in records.items()
            if old.get(rel) != r and r.article_id in keys
        ]
        if rows:
            self.conn.call(
                "record file times",
                self.conn.client.upsert,
                collection_name=self.conn.articles(view.epoch),
                data=rows,
                partial_update=True,
            )
