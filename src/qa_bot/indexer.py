"""Incremental index builds: embed only what changed since the last build.

A file is unchanged when its size and modification time match the manifest (no read at all),
or when its content hash does. Unchanged files keep their passages and vectors (the store
copies them into the new generation, or leaves them in place); new and changed files are
parsed, chunked and embedded; deleted files drop out.
A different model or chunker setting, a corrupted previous index, or ``force`` means a full
rebuild, and the report says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from qa_bot.chunking import chunk_article, embedding_text
from qa_bot.corpus import read_article
from qa_bot.embedding import Embedder
from qa_bot.errors import IndexError_, SeedsError
from qa_bot.models import Article, Chunk
from qa_bot.seed_files import SkippedFile, SourceFile, discover
from qa_bot.settings import Settings
from qa_bot.sidecar import Sidecar, load_sidecar, sidecar_fingerprint
from qa_bot.store import FORMAT_VERSION, FileRecord, Manifest
from qa_bot.store_api import FreshArticle, IndexView, Store, open_store

ProgressFactory = Callable[[int], Callable[[int], None]]
"""Given the number of chunks to embed, returns the callback that advances a progress bar."""


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    #: Files read through links out of the seeds folder (``seeds.follow_symlinks_outside``).
    outside: list[str] = field(default_factory=list)
    #: Broken entries of the metadata file (listed in ``skipped``): an error for `qa-bot index`.
    metadata_errors: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    full_rebuild_reason: str | None = None
    #: Set when only the BM25 postings had to be rebuilt (a new tokenizer version).
    lexical_rebuild_reason: str | None = None
    generation: str | None = None
    seconds: float = 0.0
    onnx_exported: bool = False

    @property
    def changed(self) -> bool:
        return bool(
            self.added
            or self.updated
            or self.removed
            or self.full_rebuild_reason
            or self.lexical_rebuild_reason
        )

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data


@dataclass(frozen=True)
class _Plan:
    keep: dict[str, FileRecord]
    fresh: dict[str, tuple[Article, FileRecord]]
    report: IndexReport


def chunking_key(settings: Settings) -> dict[str, object]:
    """What the index's windows and word postings were made with, stored in the manifest.

    Everything but ``tokenizer`` decides the windows, hence the vectors: a change there
    re-embeds everything. The tokenizer only decides the BM25 postings, which every build
    rebuilds from the stored window texts anyway (see :func:`tokenizer_changed`).
    """
    from qa_bot import text
    from qa_bot.chunking import HARD_MAX_CHARS

    return {
        **settings.chunking.model_dump(),
        "hard_max_chars": HARD_MAX_CHARS,
        "scheme": 3,
        "tokenizer": text.TOKENIZER_VERSION,
    }


def _windows_key(key: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in key.items() if k != "tokenizer"}


def tokenizer_changed(settings: Settings, manifest: Manifest) -> bool:
    """The index's word postings were made by another version of :func:`qa_bot.text.terms`.

    Questions are tokenized by the running version, so such an index would miss words it
    holds: it must be refreshed before it is asked (no re-embedding needed).
    """
    return manifest.chunking.get("tokenizer") != chunking_key(settings)["tokenizer"]


def windows_changed(settings: Settings, manifest: Manifest) -> bool:
    """The index's windows were cut by other chunker settings or another version of the
    chunker: its passages are not the ones this version would quote, so it is rebuilt."""
    return _windows_key(manifest.chunking) != _windows_key(chunking_key(settings))


def sidecar_key(overrides: dict[str, object] | None) -> str:
    """Short hash of a file's sidecar entry: editing the entry re-indexes that file only."""
    return hashlib.sha256(sidecar_fingerprint(overrides).encode()).hexdigest()[:16]


def stale_files(settings: Settings, manifest: Manifest) -> list[str]:
    """Seed files that differ from the index at a glance (stat and sidecar, no reads)."""
    files, skipped = _discover(settings)
    sidecar = _load_sidecar(settings, files, skipped)
    changed = [
        f.rel
        for f in files
        if not _looks_unchanged(manifest.files.get(f.rel), f, _key(sidecar, f.rel))
    ]
    current = {f.rel for f in files}
    changed.extend(sorted(set(manifest.files) - current))
    return changed


def _discover(settings: Settings) -> tuple[list[SourceFile], list[SkippedFile]]:
    return discover(settings.seeds_dir, follow_outside=settings.seeds.follow_symlinks_outside)


def _load_sidecar(
    settings: Settings, files: list[SourceFile], skipped: list[SkippedFile]
) -> Sidecar:
    return load_sidecar(
        settings.seeds_dir,
        settings.metadata_file,
        known={f.rel for f in files} | {s.path for s in skipped},
        limit=settings.max_file_bytes,
        follow_outside=settings.seeds.follow_symlinks_outside,
    )


def _key(sidecar: Sidecar, rel: str) -> str | None:
    """The file's sidecar key; None when its entry is broken (the indexed one stands)."""
    return None if sidecar.holds(rel) else sidecar_key(sidecar.entries.get(rel))


def _sidecar_skips(settings: Settings, sidecar: Sidecar) -> list[SkippedFile]:
    """The metadata file's problems, as lines of the report."""
    lines = []
    for problem in sidecar.problems:
        tail = ""
        if problem.fatal:
            tail = "; this entry is not applied" if problem.key is not None else ""
            tail = tail or "; no entry of it is applied"
        lines.append(SkippedFile(settings.metadata_file, problem.describe() + tail))
    return lines


def metadata_report(settings: Settings, manifest: Manifest) -> IndexReport | None:
    """What is wrong with the metadata file, for a front that answers from the index as it
    is (nothing to refresh); None when nothing is."""
    files, skipped = _discover(settings)
    sidecar = _load_sidecar(settings, files, skipped)
    if not sidecar.problems:
        return None
    return IndexReport(
        skipped=_sidecar_skips(settings, sidecar),
        metadata_errors=len(sidecar.errors),
        chunks_total=manifest.chunks,
    )


def _looks_unchanged(record: FileRecord | None, source: SourceFile, key: str | None) -> bool:
    """Same size and time as indexed, and the same sidecar entry (``key`` None: not checked)."""
    return (
        record is not None
        and (record.size, record.mtime_ns) == (source.size, source.mtime_ns)
        and (key is None or record.digest.endswith(":" + key))
    )


def update_index(
    settings: Settings,
    embedder: Embedder,
    *,
    force: bool = False,
    progress: ProgressFactory | None = None,
    lock_wait: float = 0.0,
) -> IndexReport:
    """Bring the index in line with the seeds folder; returns what was done."""
    started = time.perf_counter()
    store = open_store(settings)
    with store.lock(wait=lock_wait):
        files, skipped = _discover(settings)
        sidecar = _load_sidecar(settings, files, skipped)
        previous, reason = _previous(store, settings, embedder, force)
        plan = _plan(files, skipped, sidecar, previous, settings)
        report = plan.report
        report.skipped.extend(_sidecar_skips(settings, sidecar))
        report.metadata_errors = len(sidecar.errors)
        report.full_rebuild_reason = reason
        if previous is not None and tokenizer_changed(settings, previous.manifest):
            report.lexical_rebuild_reason = (
                "the search tokenizer changed: word index rebuilt, no passage re-embedded"
            )
        if previous is not None and not report.changed:
            report.chunks_total = previous.n_chunks
            report.generation = previous.generation
            report.seconds = time.perf_counter() - started
            if _records_moved(previous.manifest, plan.keep):
                store.refresh_records(previous, plan.keep)
            previous.close()
            return report
        if not plan.keep and not plan.fresh:
            raise SeedsError(
                f"no usable article in {settings.seeds_dir}"
                + (
                    " (skipped: "
                    + "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:5])
                    + ")"
                    if report.skipped
                    else ""
                )
                + ". Add .txt or .md files and run `qa-bot index` again."
            )
        report.generation = _write(store, settings, embedder, previous, plan, progress)
        if previous is not None:
            previous.close()
        report.chunks_total = sum(r.chunks for r in plan.keep.values()) + report.chunks_embedded
        report.seconds = time.perf_counter() - started
        return report


def _previous(
    store: Store, settings: Settings, embedder: Embedder, force: bool
) -> tuple[IndexView | None, str | None]:
    if store.current() is None:
        return None, "no index yet"
    try:
        snapshot = store.open(settings.retrieval)
    except IndexError_ as exc:
        return None, f"the previous index is unusable ({exc})"
    manifest = snapshot.manifest
    if force:
        reason = "--force"
    elif manifest.model_id != embedder.model_id:
        reason = f"embedding model changed ({manifest.model_id} -> {embedder.model_id})"
    elif windows_changed(settings, manifest):
        reason = "chunker settings changed"
    else:
        return snapshot, None
    snapshot.close()
    return None, reason


def _plan(
    files: list[SourceFile],
    skipped: list[SkippedFile],
    sidecar: Sidecar,
    previous: IndexView | None,
    settings: Settings,
) -> _Plan:
    report = IndexReport(skipped=list(skipped), outside=[f.rel for f in files if f.outside])
    old = previous.manifest.files if previous else {}
    keep: dict[str, FileRecord] = {}
    fresh: dict[str, tuple[Article, FileRecord]] = {}
    seen_text: dict[str, str] = {}
    for source in files:
        overrides = sidecar.entries.get(source.rel)
        key = sidecar_key(overrides)
        record = old.get(source.rel)
        if _looks_unchanged(record, source, _key(sidecar, source.rel)):
            assert record is not None
            keep[source.rel] = record
            report.unchanged.append(source.rel)
            continue
        article, why = read_article(source, overrides, settings.max_file_bytes)
        if article is None:
            report.skipped.append(SkippedFile(source.rel, why or "unreadable"))
            continue
        text_key = hashlib.sha256(article.text.encode()).hexdigest()
        if text_key in seen_text:
            report.skipped.append(
                SkippedFile(source.rel, f"same text as {seen_text[text_key]}: indexed once")
            )
            continue
        seen_text[text_key] = source.rel
        digest = f"{article.meta.content_hash}:{key}"
        if record is not None and record.digest == digest:
            keep[source.rel] = replace(record, size=source.size, mtime_ns=source.mtime_ns)
            report.unchanged.append(source.rel)
            continue
        fresh[source.rel] = (
            article,
            FileRecord(source.rel, digest, source.size, source.mtime_ns, article.id, 0),
        )
        (report.updated if record is not None else report.added).append(source.rel)
    report.removed = sorted(rel for rel in old if rel not in keep and rel not in fresh)
    return _Plan(keep, fresh, report)


def _records_moved(manifest: Manifest, keep: dict[str, FileRecord]) -> bool:
    return any(manifest.files.get(rel) != rec for rel, rec in keep.items())


def _write(
    store: Store,
    settings: Settings,
    embedder: Embedder,
    previous: IndexView | None,
    plan: _Plan,
    progress: ProgressFactory | None,
) -> str:
    fresh_chunks: dict[str, list[Chunk]] = {
        rel: chunk_article(article, settings.chunking) for rel, (article, _) in plan.fresh.items()
    }
    texts = [
        embedding_text(plan.fresh[rel][0].meta.title, c.text)
        for rel, chunks in fresh_chunks.items()
        for c in chunks
    ]
    callback = progress(len(texts)) if progress else None
    new_vectors = (
        embedder.embed(texts, progress=callback)
        if texts
        else np.zeros((0, embedder.dimension), dtype=np.float32)
    )
    plan.report.chunks_embedded = len(texts)
    dimension = int(new_vectors.shape[1]) if len(texts) else embedder.dimension

    records: dict[str, FileRecord] = {}
    build = store.begin(previous, settings.retrieval)
    try:
        offset = 0
        for rel in sorted(set(plan.keep) | set(plan.fresh)):
            if rel in plan.keep:
                records[rel] = plan.keep[rel]
                build.keep(records[rel])
                continue
            article, record = plan.fresh[rel]
            own = fresh_chunks[rel]
            records[rel] = replace(record, chunks=len(own))
            vectors = new_vectors[offset : offset + len(own)]
            build.put(FreshArticle(article.meta, article.text, records[rel], own, vectors))
            offset += len(own)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model_id=embedder.model_id,
            dimension=dimension,
            chunking=chunking_key(settings),
            files=records,
            built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            chunks=sum(r.chunks for r in records.values()),
        )
        return build.commit(manifest)
    except BaseException:
        build.abort()
        raise


__all__ = ["IndexReport", "metadata_report", "stale_files", "tokenizer_changed", "update_index"]
