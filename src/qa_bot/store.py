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
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from qa_bot.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    IndexWriteError,
)
from qa_bot.files import atomic_write_text
from qa_bot.settings import RetrievalSettings
from qa_bot.store_api import FORMAT_VERSION, FileRecord, Manifest, format_message
from qa_bot.store_build import CURRENT, FaissBuild
from qa_bot.store_snapshot import Snapshot

LOCK = ".lock"


class IndexStore:
    """Finds, opens and writes generations under one index folder."""

    def __init__(self, root: Path):
        self.root = root
        self.location = f"{root}"

    def begin(self, previous: Snapshot | None, retrieval: RetrievalSettings) -> FaissBuild:
        """A build of a whole new generation (see :mod:`qa_bot.store_build`)."""
        return FaissBuild(self.root, previous, retrieval)

    def refresh_records(self, view: Snapshot, records: Mapping[str, FileRecord]) -> None:
        """Rewrite the live manifest's records of files touched but unchanged (new sizes and
        modification times): the generation's content is the same, so it stays in place."""
        manifest = replace(view.manifest, files=dict(sorted(records.items())))
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
